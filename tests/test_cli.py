"""The package's layering: validation and the non-training stages never load TensorFlow/Keras,
and a stage module never imports another stage module."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap

import pytest

from .conftest import ROOT

SRC = ROOT / "src"
HEAVY = ("tensorflow", "keras")


def loaded_after(code: str, heavy: tuple[str, ...] = HEAVY, env: dict | None = None) -> dict:
    """Run ``code`` in a fresh interpreter from the project root; which ``heavy`` modules it
    loaded, its exit status (a SystemExit is caught) and its output."""
    script = textwrap.dedent("""
        import contextlib, io, json, sys
        out, status = io.StringIO(), 0
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        {code}
        except SystemExit as exit:
            status = exit.code
        print(json.dumps({{"loaded": [m for m in {heavy} if m in sys.modules],
                          "status": status, "output": out.getvalue()}}))
    """).format(code=textwrap.indent(textwrap.dedent(code), " " * 8), heavy=heavy)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_validate_does_not_load_tensorflow():
    result = loaded_after("""
        from initbench import cli
        cli.main(["validate"])
    """)
    assert result["status"] in (0, None) and ": valid (" in result["output"], result
    assert result["loaded"] == []


def test_help_does_not_load_tensorflow():
    result = loaded_after("""
        from initbench import cli
        cli.main(["--help"])
    """)
    assert result["status"] == 0 and "usage: initbench" in result["output"]
    assert result["loaded"] == []


def test_version_names_the_package_and_loads_no_tensorflow():
    from initbench import __version__

    result = loaded_after("""
        from initbench import cli
        cli.main(["--version"])
    """)
    assert result["status"] == 0 and result["output"].strip() == f"initbench {__version__}"
    assert result["loaded"] == []


def test_an_unknown_cell_fails_before_tensorflow_loads():
    result = loaded_after("""
        from initbench import cli
        cli.main(["train", "--cell", "nope"])
    """)
    assert result["status"] == 2
    assert "params: cell: got 'nope'; allowed: baseline" in result["output"]
    assert result["loaded"] == []


def test_a_cell_with_no_model_is_written_without_tensorflow_or_mlflow(tmp_path, mnist):
    """No learning-rate sweep (the default): its stage writes the cell's two directories, with
    no member, in a second -- no TensorFlow, Keras or MLflow import, no MLflow run (the store is
    never even created) -- and what it writes is the cell as the report reads it."""
    from initbench.config import DataConfig
    from initbench.data import normalize, processed
    from initbench.results import read_cell

    arrays, _ = normalize.build_arrays(mnist, DataConfig("mnist", 0.1, False, 0, 3000, 500))
    npz, out, runs = tmp_path / "mnist.npz", tmp_path / "train" / "lr_sweep", tmp_path / "runs"
    processed.save(npz, arrays)
    store = tmp_path / "mlflow.db"
    result = loaded_after(f"""
        from initbench import cli
        cli.main(["train", "--cell", "train_lr_sweep", "--set", "study.lr_sweep.learning_rates=[]",
                  "--data", {str(npz)!r}, "--out", {str(out)!r}, "--runs", {str(runs)!r}])
    """, heavy=(*HEAVY, "mlflow"), env={"MLFLOW_TRACKING_URI": f"sqlite:///{store}"})
    assert result["status"] in (0, None), result
    assert result["loaded"] == [] and not store.exists(), result
    assert "lr_sweep: no model to train" in result["output"]
    cell = read_cell(out)
    assert cell["cell"] == "lr_sweep" and cell["members"] == []
    assert cell["config"]["n_train"] == len(arrays["y_train"]) == 2700
    assert sorted(p.name for p in out.iterdir()) == ["curves", "metrics", "results.json"]
    record = json.loads((runs / "runs.json").read_text())
    assert record["parent_run_id"] is None and record["runs"] == []
    assert record["timing"]["model_epochs"] == 0


@pytest.mark.parametrize("module", [
    "initbench.report.stage", "initbench.data.normalize", "initbench.data.download",
    "initbench.results", "initbench.config", "initbench.init.registry", "initbench.init.docs",
    "initbench.train.records",
])
def test_module_does_not_import_tensorflow(module):
    assert loaded_after(f"import {module}")["loaded"] == []


def test_the_training_stage_does_load_tensorflow():
    """The check above can see TensorFlow when it is there."""
    assert loaded_after("import initbench.train.stage")["loaded"] == list(HEAVY)


# -- import graph ------------------------------------------------------------------------------

def module_name(path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path) -> set[str]:
    """Every initbench module ``path`` imports, at the top or inside a function
    (``from initbench.x import y`` counts as importing both initbench.x and initbench.x.y)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in out if m == "initbench" or m.startswith("initbench.")}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in (SRC / "initbench").rglob("*.py")}


def under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def test_the_graph_sees_the_layout(graph):
    assert {"initbench.train.stage", "initbench.report.stage", "initbench.data.normalize",
            "initbench.data.download", "initbench.train.cell", "initbench.init.registry"} <= set(graph)
    assert "initbench.train.cell" in graph["initbench.train.stage"]
    assert "initbench.train.records" in graph["initbench.train.stage"]
    assert "initbench.data.processed" in graph["initbench.train.records"]


STAGES = ("initbench.data.download", "initbench.data.normalize", "initbench.train.stage",
          "initbench.report.stage")


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_never_imports_another_stage(graph, stage):
    assert not [m for m in graph[stage] if under(m, *(s for s in STAGES if s != stage))]


def test_train_stage_imports_no_other_stage(graph):
    bad = [m for m in graph["initbench.train.stage"]
           if under(m, "initbench.report", "initbench.data.normalize", "initbench.data.download")]
    assert bad == []


def test_report_imports_nothing_from_training(graph):
    bad = {name: sorted(m for m in deps if under(m, "initbench.train"))
           for name, deps in graph.items() if under(name, "initbench.report")}
    assert {k: v for k, v in bad.items() if v} == {}


def test_data_imports_nothing_from_train_report_or_init(graph):
    bad = {name: sorted(m for m in deps if under(m, "initbench.train", "initbench.report",
                                                 "initbench.init"))
           for name, deps in graph.items() if under(name, "initbench.data")}
    assert {k: v for k, v in bad.items() if v} == {}

"""Profile runs and project roots on real copies of the project: `make profile` twice, as in a
fresh clone (a committed dvc.lock, an empty DVC cache), is one DVC experiment whose second run
restores from DVC's run cache, and every logged model of the first run still loads; a profile
name that is a path is refused before anything runs (a directory beside the copy survives); a
leftover INITBENCH_ROOT or DVC_ROOT never points a stage at another checkout; an experiment
whose artifacts sit in a scratch worktree is said so."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from initbench import locations, tracking
from initbench.config.yamlio import parse_yaml
from initbench.paths import find_root
from initbench.profile_run import experiment_ref

from .conftest import ROOT, copy_project, project_params, ran_stages, run

VENV = Path(sys.executable).parent.parent
# The tiny profile: the pipeline's cell alone, two initializers (replaced whole), one seed, one
# epoch; every other cell off, quick's strategy variants replaced by none.
TINY = """\
data: {train_limit: 1000, test_limit: 500}
train: {epochs: 1, learning_rate: 1e-3}
initializers:
  he_normal:
  glorot_uniform:
study:
  seeds: 1
  datasets: {names: []}
  lr_sweep: {learning_rates: []}
  depth: {depths: []}
  conv: {depths: []}
  phase: {depths: []}
  strategies: {variants: {}}
"""


def commit(root: Path, message: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", message], cwd=root, check=True)


def make(root: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    # -o: never remake the suite's environment (the copy's files may be newer than its stamp).
    return run(["make", f"VENV={VENV}", "-o", f"{VENV}/.installed", *args], root, env, check=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, env) -> Path:
    root = copy_project(tmp_path_factory.mktemp("profiles") / "project", env)
    (root / "profiles" / "tiny.yaml").write_text(TINY)
    # Every stage says which initbench it imports: the workspace's own, not the venv's.
    init = root / "src" / "initbench" / "__init__.py"
    init.write_text(init.read_text() + "\nimport os as _os\nif _os.environ.get('DVC_STAGE'):\n"
                    "    print(f'initbench code: {__file__}', flush=True)\n")
    commit(root, "a tiny profile")
    return root


@pytest.mark.e2e
def test_make_profile_twice_is_one_experiment_restored_from_the_cache(tiny, env):
    # As in a fresh clone: the committed dvc.lock names a directory the empty DVC cache lacks.
    md5 = parse_yaml((tiny / "dvc.lock").read_text(), "lock")["stages"]["normalize"]["outs"][0]["md5"]
    assert md5.endswith(".dir") and not (tiny / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).exists()
    tracked = subprocess.run(["git", "status", "--porcelain"], cwd=tiny, capture_output=True,
                             text=True, check=True).stdout
    first = make(tiny, env, "profile", "PROFILE=tiny")
    out = first.stdout + first.stderr
    assert first.returncode == 0, out[-4000:]
    assert "train" in ran_stages(first)
    code = set(re.findall(r"initbench code: (\S+)", out))
    assert code and all(Path(c).is_relative_to(tiny / ".dvc" / "tmp" / "exps") for c in code), code
    # The checkout is untouched: params.yaml, dvc.lock, reports/; no scratch worktree; no store
    # but the project's.
    assert subprocess.run(["git", "status", "--porcelain"], cwd=tiny, capture_output=True,
                          text=True, check=True).stdout == tracked
    assert not (tiny / ".tiny").exists()
    assert [p.relative_to(tiny) for p in tiny.rglob("mlflow.db")] == [Path("mlflow.db")]
    assert "dvc exp show" in out and "reports/report.md" in out
    listed = run(["dvc", "exp", "list", "--name-only"], tiny, env).stdout.split()
    assert listed == ["tiny"]

    client = MlflowClient(tracking_uri=f"sqlite:///{tiny / 'mlflow.db'}")
    exp = client.get_experiment_by_name("initbench")
    assert exp.artifact_location == (tiny / "mlruns").as_uri()
    runs = client.search_runs([exp.experiment_id], "tags.`initbench.role` = 'model'")
    assert sorted(r.data.tags["initbench.label"] for r in runs) == ["glorot_uniform", "he_normal"]
    assert {r.data.params["train.learning_rate"] for r in runs} == {"0.001"}
    import mlflow

    mlflow.set_tracking_uri(client.tracking_uri)
    try:
        every = [e.experiment_id for e in client.search_experiments()]
        models = [m for m in mlflow.search_logged_models(every, output_format="list")
                  if m.source_run_id in {r.info.run_id for r in runs}]
        assert len(models) == 2
        for model in models:  # beside the store, never in DVC's throwaway copy
            where = Path(model.artifact_location.removeprefix("file://"))
            assert where.is_relative_to(tiny / "mlruns"), (model.experiment_id, where)

        second = make(tiny, env, "quick", "PROFILE=tiny")
        again = second.stdout + second.stderr
        assert second.returncode == 0, again[-4000:]
        assert "Stage 'train' is cached - skipping run, checking out outputs" in again
        assert "train" not in ran_stages(second), again[-4000:]
        assert re.search(r"the earlier experiment 'tiny' of this commit is now 'tiny-\d", again)
        listed = run(["dvc", "exp", "list", "--name-only"], tiny, env).stdout.split()
        assert len(listed) == 2 and "tiny" in listed
        outs = [parse_yaml(run(["git", "show", f"{experiment_ref(tiny, e)}:dvc.lock"], tiny, env)
                           .stdout, e)["stages"]["train"]["outs"] for e in listed]
        assert outs[0] == outs[1]  # the first run's very outputs, restored
        assert len(client.search_runs([exp.experiment_id], "tags.`initbench.role` = 'model'")) == 2
        for model in models:  # every logged model of the first run still loads
            assert mlflow.keras.load_model(f"models:/{model.model_id}") is not None
            assert mlflow.pyfunc.load_model(f"models:/{model.model_id}") is not None
    finally:
        mlflow.set_tracking_uri(None)


@pytest.mark.parametrize("name", ["./quick", "/quick", "../params", "quick/", "..", "nope"])
def test_a_profile_name_that_is_no_word_is_refused_and_nothing_beside_is_deleted(tmp_path, name):
    root, beside = tmp_path / "project", tmp_path / "quick"
    root.mkdir()
    for file in ("Makefile", "params.yaml", "dvc.yaml"):
        (root / file).write_bytes((ROOT / file).read_bytes())
    (root / "profiles").mkdir()
    (root / "profiles" / "quick.yaml").write_bytes((ROOT / "profiles/quick.yaml").read_bytes())
    (beside / "keep").mkdir(parents=True)
    (tmp_path / "params.yaml").write_text("{}\n")
    proc = subprocess.run(["make", "profile", f"PROFILE={name}", f"VENV={VENV}", "-o",
                           f"{VENV}/.installed"], cwd=root,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and f"PROFILE={name}: no such profile" in proc.stderr
    assert (beside / "keep").is_dir() and sorted(p.name for p in tmp_path.iterdir()) == [
        "params.yaml", "project", "quick"]
    assert sorted(p.name for p in root.iterdir()) == ["Makefile", "dvc.yaml", "params.yaml",
                                                      "profiles"]


@pytest.mark.parametrize("name", ["/abs/path.yaml", str(ROOT / "profiles" / "quick.yaml"),
                                  "../params", "quick.yaml", "./quick"])
@pytest.mark.parametrize("mode", [[], ["--run"], ["--overrides"]])
def test_initbench_profile_takes_a_profile_name_only(tmp_path, name, mode):
    params = project_params(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "initbench.cli", "profile", name, *mode,
                           "--params", str(params)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(
        f"initbench profile: error: profile {name!r}: not a profile name"), proc.stderr
    assert "known: conv, full, long, quick" in proc.stderr
    assert params.read_bytes() == (ROOT / "params.yaml").read_bytes()


@pytest.mark.e2e
def test_a_foreign_initbench_root_never_gets_this_checkouts_outputs(tmp_path, env):
    """INITBENCH_ROOT left naming checkout B: `dvc repro` in A writes A's data/raw and nothing
    of B's."""
    def mnist_only(params: dict) -> None:
        params["study"]["datasets"]["names"] = []

    a, b = (copy_project(tmp_path / name, env, mnist_only) for name in "ab")
    before = sorted(p.relative_to(b) for p in b.rglob("*") if ".git" not in p.parts)
    proc = run(["dvc", "repro", "download"], a, {**env, "INITBENCH_ROOT": str(b)})
    assert "download" in ran_stages(proc)
    assert (a / "data/raw/mnist/train-images-idx3-ubyte.gz").is_file()
    assert sorted(p.relative_to(b) for p in b.rglob("*") if ".git" not in p.parts) == before


def test_the_root_comes_from_the_working_directory_whatever_the_environment(tmp_path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / name / "src").mkdir(parents=True)
        for file in ("params.yaml", "dvc.yaml"):
            (tmp_path / name / file).write_text("{}\n")
    workspace = tmp_path / "a" / ".dvc" / "tmp" / "exps" / "tmp1"
    workspace.mkdir(parents=True)
    for file in ("params.yaml", "dvc.yaml"):
        (workspace / file).write_text("{}\n")
    monkeypatch.setenv("INITBENCH_ROOT", str(tmp_path / "b"))
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "b"))
    monkeypatch.chdir(tmp_path / "a" / "src")
    assert find_root() == locations.store_root() == tmp_path / "a"
    monkeypatch.chdir(workspace)  # DVC's throwaway copy: the project's store, DVC_ROOT's
    assert locations.store_root() == workspace
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "a"))
    assert locations.store_root() == tmp_path / "a"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db?timeout=5")
    assert locations.store_uri() == f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}?timeout=5"
    monkeypatch.chdir(tmp_path)  # no project here: INITBENCH_ROOT (a container started elsewhere)
    assert find_root() == tmp_path / "b"


def test_an_experiment_with_its_artifacts_in_a_scratch_worktree_is_said_so(mlflow_store, tmp_path,
                                                                             capsys):
    import mlflow

    old = mlflow.create_experiment("old", artifact_location=(tmp_path / ".quick/mlruns").as_uri())
    gone = mlflow.create_experiment("gone", artifact_location=(tmp_path.parent / "x/mlruns").as_uri())
    assert tracking.experiment_id("old") == old and tracking.experiment_id("gone") == gone
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "mlflow.store" not in ln]
    assert len(lines) == 2 and all(ln.startswith("warning: MLflow experiment ") for ln in lines)
    assert f"{tmp_path / '.quick'}, a scratch directory" in lines[0]
    assert "which no longer exists" in lines[1] and f"rename -x {gone}" in lines[1]
    new = tracking.experiment_id("new")
    assert mlflow.get_experiment(new).artifact_location == (tmp_path / "mlruns").as_uri()
    capsys.readouterr()
    tracking.experiment_id("new")
    assert "warning" not in capsys.readouterr().err


def test_a_rerun_in_a_fresh_clone_restores_a_stage_reading_inside_a_directory_output(tmp_path,
                                                                                      env):
    """DVC 3.67 alone fails the second `dvc exp run` of a fresh clone whose dvc.lock names a
    directory output its cache lacks, restoring a stage reading a file inside it from the run
    cache; `python -m initbench.profile_run` (how profile runs call DVC) restores it."""
    (origin := tmp_path / "origin").mkdir()
    (origin / "params.yaml").write_text("v: 0\n")
    (origin / "raw.txt").write_text("raw\n")
    # Like download, normalize and train: a stage that is unchanged once its output is cached,
    # one restored from the run cache whose directory output the next one reads a file of.
    (origin / "dvc.yaml").write_text(
        "stages:\n  get: {cmd: cp raw.txt g, deps: [raw.txt], outs: [g]}\n"
        "  make: {cmd: mkdir -p d && cp params.yaml d/a, deps: [g], params: [v], outs: [d]}\n"
        "  use: {cmd: cp d/a u, deps: [d/a], outs: [u]}\n")
    who = {**env, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t.invalid"}
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "repro", "-q"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "a pipeline and its dvc.lock"]):
        run(cmd, origin, who)
    results = {}
    for name, dvc in (("dvc", ["dvc"]), ("ours", [sys.executable, "-m", "initbench.profile_run"])):
        clone = tmp_path / name  # an empty DVC cache
        run(["git", "clone", "-q", str(origin), str(clone)], tmp_path, who)
        results[name] = [run([*dvc, "exp", "run", "--temp", "-n", f"v2-{i}", "-S", "v=2"], clone,
                             who, check=False) for i in (1, 2)]
    first, second = results["ours"]
    assert first.returncode == 0 and "Running stage 'use'" in first.stdout, first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Stage 'use' is cached - skipping run, checking out outputs" in second.stdout
    assert not ran_stages(second)
    plain = results["dvc"][1]  # if DVC alone gets this right, dvc_main's workaround can go
    assert plain.returncode != 0 and "failed to load directory ('d',)" in plain.stderr, plain.stderr

"""Profiles (profiles/*.yaml): each overlays params.yaml into valid params, keeps its comments,
gives `dvc exp run -S` overrides that make the same params, and says what it promises (quick:
small; full: every kind of study cell; long: full with more seeds and a finer phase diagram;
conv: the conv study)."""

from __future__ import annotations

import re
import subprocess

import pytest

from initbench import config
from initbench.profiles import apply_profile

from .conftest import ROOT, project_params

PROFILES = sorted(p.stem for p in (ROOT / "profiles").glob("*.yaml"))


def applied(tmp_path, name: str) -> config.Params:
    """The default params with profile ``name`` applied, in a fresh copy of the project's files."""
    params = project_params(tmp_path / name, name)
    assert "# The single source of truth" in params.read_text()
    return config.load(params)


def test_the_profiles():
    assert PROFILES == ["conv", "full", "long", "quick", "schoenholz"]


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_gives_valid_params(tmp_path, name):
    applied(tmp_path, name)


def test_full_is_the_default_with_every_kind_of_study_cell(tmp_path):
    default, full = config.load(ROOT / "params.yaml"), applied(tmp_path, "full")
    assert set(default.cells()) < set(full.cells())
    kinds = {c.split("-")[0] for c in full.cells()}
    assert kinds == {"baseline", "lr_sweep", "dataset", "depth", "conv", "strategy", "phase"}
    assert {c.split("-")[0] for c in default.cells()} == {"baseline", "lr_sweep", "depth", "strategy",
                                                           "phase"}
    assert full.study.datasets.names == ("fashion-mnist",) and full.study.lr_sweep.learning_rates
    assert set(default.study.strategies.variants) < set(full.study.strategies.variants)
    # The pipeline's cell is full's; the default's deep cells are narrower, with more seeds.
    assert (full.model, full.train, full.initializers) == (default.model, default.train,
                                                         default.initializers)
    assert full.study.seeds == full.study.datasets.seeds == 8 == default.study.seeds
    assert (full.study.depth.width, full.study.depth.seeds) == (256, 3)
    assert (default.study.depth.width, default.study.depth.seeds) == (128, 6)
    assert set(default.study.depth.depths) < set(full.study.depth.depths)
    assert full.study.depth.initializers == default.study.depth.initializers
    assert (full.study.depth.train_limit, default.study.depth.train_limit) == (20000, 15000)


def test_long_extends_full_with_more_seeds_and_a_finer_phase_diagram(tmp_path):
    full, long = applied(tmp_path, "full"), applied(tmp_path, "long")
    assert long.study.seeds == 2 * full.study.seeds == long.study.datasets.seeds
    assert long.study.datasets.names == full.study.datasets.names
    assert long.study.depth.seeds > full.study.depth.seeds
    assert long.study.depth.depths == full.study.depth.depths
    assert long.study.strategies == full.study.strategies and long.study.conv == full.study.conv
    assert set(full.study.phase.depths) < set(long.study.phase.depths)
    assert set(full.study.phase.sigma_w) <= set(long.study.phase.sigma_w)
    assert len(long.study.phase.sigma_w) > len(full.study.phase.sigma_w)
    assert (long.model, long.train, long.initializers) == (full.model, full.train, full.initializers)


def test_conv_is_the_full_conv_study_and_the_pipeline_cell_alone(tmp_path):
    full, conv = applied(tmp_path, "full"), applied(tmp_path, "conv")
    assert conv.study.conv.depths == (2, 4, 8, 16) and set(full.study.conv.depths) < {2, 4, 8, 16}
    assert conv.study.conv.activations == ("relu", "tanh")
    assert conv.study.conv.seeds > full.study.conv.seeds
    assert conv.study.conv.initializers == full.study.conv.initializers
    assert conv.study.strategies.variants == {}
    assert conv.study.depth.depths == conv.study.phase.depths == conv.study.datasets.names == ()
    assert set(conv.cells()) == {"baseline", "lr_sweep"} | {
        f"conv-{d}-{a}" for d in (2, 4, 8, 16) for a in ("relu", "tanh")}


def test_an_empty_mapping_in_a_profile_replaces_the_value(tmp_path):
    assert applied(tmp_path, "full").study.strategies.variants
    (tmp_path / "full" / "profiles" / "calm.yaml").write_text("study:\n  strategies:\n    variants: {}\n")
    apply_profile(tmp_path / "full" / "params.yaml", "calm")
    assert config.load(tmp_path / "full" / "params.yaml").study.strategies.variants == {}


@pytest.mark.parametrize(("text", "error"), [
    ("extends: loop\n", "profile 'loop': extends a cycle: loop -> loop"),
    ("extends: nope\n", "profile 'nope': no "),
    ("extends: [full]\n", "profile 'loop': extends: got ['full']; allowed: a profile name"),
    ("- study\n", "profile 'loop': got list; allowed: a mapping"),
])
def test_a_bad_profile_is_one_line_and_leaves_params_alone(tmp_path, text, error):
    project_params(tmp_path)
    (tmp_path / "profiles" / "loop.yaml").write_text(text)
    with pytest.raises(config.ConfigError, match=re.escape(error)):
        apply_profile(tmp_path / "params.yaml", "loop")
    assert (tmp_path / "params.yaml").read_bytes() == (ROOT / "params.yaml").read_bytes()


def test_an_unknown_profile_is_one_line_in_make_and_initbench(tmp_path):
    proc = subprocess.run(["make", "-n", "profile", "PROFILE=long; touch x"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "PROFILE=long; touch x: no such profile; known: conv full long quick" in proc.stderr
    known = r"profile 'nope': no .*; known profiles: conv, full, long, quick"
    with pytest.raises(config.ConfigError, match=known):
        applied(tmp_path, "nope")


@pytest.mark.parametrize("name", PROFILES)
def test_each_profiles_scratch_worktree_is_git_ignored(name):
    """The older `make profile PROFILE=<name>` worked in .<name>/, which may still hold artifacts
    of runs in the store: git must not offer it for a commit."""
    proc = subprocess.run(["git", "check-ignore", "-q", f".{name}/"], cwd=ROOT, check=False)
    assert proc.returncode == 0, f".{name}/ is not in .gitignore"


def comment_texts(tokens) -> list[str]:
    """The text of every ruamel CommentToken in a (nested) list of them."""
    if tokens is None:
        return []
    if isinstance(tokens, list):
        return [text for token in tokens for text in comment_texts(token)]
    return [tokens.value]


def full_comments() -> list[tuple[tuple[str, ...], str]]:
    """(key path, text after "full: ") for every comment of params.yaml that states the full
    profile's value, each with the key ruamel's round trip attaches it to (the comment after a
    value and the comment lines below it; a flow list or mapping keeps its own)."""
    from ruamel.yaml import YAML

    out = []

    def walk(node, path: tuple[str, ...]) -> None:
        for key, value in node.items():
            texts = comment_texts(node.ca.items.get(key))
            texts += comment_texts(value.ca.comment if hasattr(value, "ca") else None)
            said = {m.strip() for t in texts for m in re.findall(r"\bfull: ([^;)\n]+)", t)}
            out.extend(((*path, key), text) for text in sorted(said))
            if isinstance(value, dict):
                walk(value, (*path, key))

    walk(YAML().load(ROOT / "params.yaml"), ())
    return out


def test_params_comments_state_the_full_profiles_values(tmp_path):
    """params.yaml's comments say what `full` sets ("full: [2, 5, 10, 20]"): they must not drift
    from profiles/full.yaml."""
    import yaml

    full = yaml.safe_load(project_params(tmp_path, "full").read_text())
    said = full_comments()
    assert len(said) >= 7, said  # every study section that full turns on says so
    for path, text in said:
        value = full
        for key in path:
            value = value[key]
        if isinstance(value, dict):  # strategy variants: named in prose
            assert all(name in text for name in value), (path, text, value)
            continue
        stated = yaml.safe_load(text.split(" (")[0])
        if isinstance(value, list) and not isinstance(stated, list):
            stated = [stated]
        assert stated == value, (path, text, value)


@pytest.mark.parametrize(("base", "name"), [*((None, n) for n in [*PROFILES, "calm"]),
                                           ("full", "conv"), ("full", "calm"), ("quick", "calm")])
def test_the_dvc_overrides_of_a_profile_are_what_overlaying_it_gives(tmp_path, base, name):
    """`dvc exp run -S` with `initbench profile <name> --overrides` (applied by DVC's own code, as
    DVC applies them to params.yaml) gives exactly the params that overlaying the profile gives,
    mappings replaced whole included -- from the default params and from profiled ones."""
    from dvc.utils.hydra import apply_overrides

    from initbench.config.yamlio import parse_yaml
    from initbench.profiles import overrides

    params = project_params(tmp_path, base)
    (tmp_path / "profiles" / "calm.yaml").write_text(
        "train: {learning_rate: 1e-3}\nstudy:\n  strategies:\n    variants: {}\n  depth:\n"
        "    depths: []\n    initializers: {he_normal: , lsuv: {tol: 0.2}}\n")
    sets = overrides(params, name)
    dvc = tmp_path / "dvc" / "params.yaml"
    dvc.parent.mkdir()
    dvc.write_bytes(params.read_bytes())
    apply_overrides(dvc, sets)
    apply_profile(params, name)
    assert parse_yaml(dvc.read_text(), "dvc's") == parse_yaml(params.read_text(), "overlaid")
    config.load(dvc)


def test_profiles_and_params_are_read_the_way_dvc_reads_them(tmp_path):
    """YAML 1.2 as DVC reads it: `1e-3` is a number in a profile and in params.yaml."""
    params = project_params(tmp_path)
    params.write_text(params.read_text().replace("learning_rate: 0.001\n", "learning_rate: 1e-3\n"))
    assert "learning_rate: 1e-3\n" in params.read_text()
    (tmp_path / "profiles" / "small-lr.yaml").write_text("train:\n  learning_rate: 1e-4\n")
    from initbench.profiles import overrides

    assert overrides(params, "small-lr") == ["train.learning_rate=0.0001"]
    assert overrides(params, "quick")  # params.yaml's 1e-3 is valid
    apply_profile(params, "small-lr")
    assert config.load(params).train.learning_rate == 1e-4

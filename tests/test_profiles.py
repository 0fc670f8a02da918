"""Profiles (profiles/*.yaml): each overlays params.yaml into valid params, keeps its comments,
and says what it promises (quick: small; long: more seeds and a finer phase diagram)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from initbench import config
from initbench.profiles import apply_profile

from .conftest import ROOT

PROFILES = sorted(p.stem for p in (ROOT / "profiles").glob("*.yaml"))


def applied(tmp_path, name: str) -> config.Params:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    apply_profile(tmp_path / "params.yaml", name)
    assert "# The single source of truth" in (tmp_path / "params.yaml").read_text()
    return config.load(tmp_path / "params.yaml")


def test_the_profiles():
    assert PROFILES == ["conv", "long", "quick"]


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_gives_valid_params(tmp_path, name):
    applied(tmp_path, name)


def test_long_is_the_default_study_with_more_seeds_and_a_finer_phase_diagram(tmp_path):
    default, long = config.load(ROOT / "params.yaml"), applied(tmp_path, "long")
    assert long.study.seeds == 2 * default.study.seeds == long.study.datasets.seeds
    assert long.study.datasets.names == default.study.datasets.names
    assert long.study.depth.seeds > default.study.depth.seeds
    assert long.study.depth.depths == default.study.depth.depths
    assert set(default.study.phase.depths) < set(long.study.phase.depths)
    assert set(default.study.phase.sigma_w) <= set(long.study.phase.sigma_w)
    assert len(long.study.phase.sigma_w) > len(default.study.phase.sigma_w)
    assert (long.model, long.train, long.initializers) == (default.model, default.train,
                                                         default.initializers)


def test_conv_is_the_full_conv_study_and_the_pipeline_cell_alone(tmp_path):
    default, conv = config.load(ROOT / "params.yaml"), applied(tmp_path, "conv")
    assert conv.study.conv.depths == (2, 4, 8, 16) and set(default.study.conv.depths) < {2, 4, 8, 16}
    assert conv.study.conv.activations == ("relu", "tanh")
    assert conv.study.conv.seeds > default.study.conv.seeds
    assert conv.study.conv.initializers == default.study.conv.initializers
    # An empty mapping replaces the default's (no strategy variants), a list empties a grid.
    assert conv.study.strategies.variants == {} and default.study.strategies.variants
    assert conv.study.depth.depths == conv.study.phase.depths == conv.study.datasets.names == ()
    assert set(conv.cells()) == {"baseline", "lr_sweep"} | {
        f"conv-{d}-{a}" for d in (2, 4, 8, 16) for a in ("relu", "tanh")}


def test_an_unknown_profile_is_one_line_in_make_and_initbench(tmp_path):
    proc = subprocess.run(["make", "-n", "profile", "PROFILE=long; touch x"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "PROFILE=long; touch x: no such profile; known: conv long quick" in proc.stderr
    with pytest.raises(config.ConfigError, match=r"profile 'nope': no .*; known profiles: conv, long, quick"):
        applied(tmp_path, "nope")

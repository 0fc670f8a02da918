"""Profiles: named sets of parameter values overlaid onto ``params.yaml`` (``profiles/*.yaml``).

The overlay keeps params.yaml's comments and order (ruamel.yaml round trip); nested mappings are
merged key by key, except ``initializers`` mappings and empty mappings, which replace the value
whole (``variants: {}`` means none). A profile may start from another: ``extends: <name>``
applies that one first (``long`` is ``full`` with more seeds). The result is validated before the
file is written, and written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

from initbench import config
from initbench.paths import atomic_output

REPLACED = ("initializers",)


def _merge(base: Any, overlay: Any) -> None:
    for key, value in overlay.items():
        if value and isinstance(value, dict) and key not in REPLACED and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _overlays(directory: Path, name: str, chain: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The overlays of profile ``name``, its ``extends`` chain first (base before extension)."""
    profile = directory / f"{name}.yaml"
    if not profile.is_file():
        known = sorted(p.stem for p in directory.glob("*.yaml"))
        raise config.ConfigError(f"profile {name!r}: no {profile}; known profiles: {', '.join(known)}")
    if name in chain:
        raise config.ConfigError(f"profile {chain[0]!r}: extends a cycle: {' -> '.join((*chain, name))}")
    overlay = yaml.safe_load(profile.read_text()) or {}
    if not isinstance(overlay, dict):
        raise config.ConfigError(f"profile {name!r}: got {type(overlay).__name__}; allowed: a mapping")
    base = overlay.pop("extends", None)
    if base is None:
        return [overlay]
    if not isinstance(base, str):
        raise config.ConfigError(f"profile {name!r}: extends: got {base!r}; allowed: a profile name")
    return [*_overlays(directory, base, (*chain, name)), overlay]


def apply_profile(params_path: Path, name: str) -> None:
    overlays = _overlays(params_path.parent / "profiles", name)
    rt = YAML()
    doc = rt.load(params_path.read_text())
    for overlay in overlays:
        _merge(doc, overlay)
    buffer = io.StringIO()
    rt.dump(doc, buffer)
    config.from_dict(yaml.safe_load(buffer.getvalue()))  # validate before writing
    with atomic_output(params_path) as tmp:
        tmp.write_text(buffer.getvalue())

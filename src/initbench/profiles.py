"""Profiles: named sets of parameter values overlaid onto ``params.yaml`` (``profiles/*.yaml``).

The overlay keeps params.yaml's comments and order (ruamel.yaml round trip); nested mappings are
merged key by key, except ``initializers`` mappings and empty mappings, which replace the value
whole (``variants: {}`` means none). The result is
validated before the file is written, and written atomically.
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


def apply_profile(params_path: Path, name: str) -> None:
    profile = params_path.parent / "profiles" / f"{name}.yaml"
    if not profile.is_file():
        known = sorted(p.stem for p in profile.parent.glob("*.yaml"))
        raise config.ConfigError(f"profile {name!r}: no {profile}; known profiles: {', '.join(known)}")
    rt = YAML()
    doc = rt.load(params_path.read_text())
    _merge(doc, yaml.safe_load(profile.read_text()) or {})
    buffer = io.StringIO()
    rt.dump(doc, buffer)
    config.from_dict(yaml.safe_load(buffer.getvalue()))  # validate before writing
    with atomic_output(params_path) as tmp:
        tmp.write_text(buffer.getvalue())

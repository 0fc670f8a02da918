"""Profiles: named sets of parameter values for ``params.yaml`` (``profiles/<name>.yaml``).

A profile's values merge into params.yaml key by key, except ``initializers`` mappings and empty
mappings, which replace the value whole (``variants: {}`` means none). A profile may start from
another: ``extends: <name>`` applies that one first (``long`` is ``full`` with more seeds). Every
file is read the one way DVC reads params.yaml (:func:`initbench.config.yamlio.parse_yaml`), and
the result is validated before anything uses it. A profile is used in one of two ways:

* :func:`overrides`: the ``dvc exp run -S`` overrides (Hydra's grammar, as DVC applies them)
  that turn params.yaml into the profile's, so ``initbench profile <name> --run`` (``make
  profile``) runs it as a DVC experiment of the project without touching the tracked file;
* :func:`apply_profile`: rewrite a params.yaml in place, atomically, keeping its comments and
  order (ruamel.yaml round trip): for a copy of the project.
"""

from __future__ import annotations

import copy
import io
import math
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from initbench import config
from initbench.config.yamlio import parse_yaml
from initbench.paths import atomic_output

REPLACED = ("initializers",)
# A profile name is a word: it names profiles/<name>.yaml, a DVC experiment and a make goal.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")  # a key Hydra's override grammar takes bare


def known(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml") if NAME.fullmatch(p.stem))


def profile_file(directory: Path, name: Any) -> Path:
    """``<directory>/<name>.yaml``; a name that is not a word naming one is one line."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise config.ConfigError(f"profile {name!r}: not a profile name (a word of letters, "
                                 f"digits, _ and -); known: {', '.join(known(directory))}")
    profile = directory / f"{name}.yaml"
    if not profile.is_file():
        raise config.ConfigError(f"profile {name!r}: no {profile}; known profiles: "
                                 f"{', '.join(known(directory))}")
    return profile


def _merge(base: Any, overlay: Any) -> None:
    for key, value in overlay.items():
        old = base.get(key)
        if value and isinstance(value, dict) and key not in REPLACED and isinstance(old, dict) and old:
            _merge(old, value)
        else:
            base[key] = _styled(value, _flow(old))


def _flow(old: Any) -> bool:
    fa = getattr(old, "fa", None)
    return fa is not None and (bool(fa.flow_style()) or not old)  # `[]`, `{}`: always flow


def _styled(new: Any, flow: bool = False) -> Any:
    """``new`` in params.yaml's style: in flow style where it replaces a flow collection
    (``[2, 10]``, ``{}``), else its lists and innermost mappings (``{gain: auto}``). Besides the
    look: DVC's own writer (ruamel) turns a block collection it empties (``-S
    study.depth.depths=[]``) into a broken file."""
    if isinstance(new, list):
        styled: Any = CommentedSeq(_styled(v, True) for v in new)
    elif isinstance(new, dict):
        styled = CommentedMap((k, _styled(v, flow)) for k, v in new.items())
        if not flow and (all(v is None for v in new.values())
                         or any(isinstance(v, (dict, list)) and v for v in new.values())):
            return styled  # `he_normal:` lines, or mappings of mappings: block style
    else:
        return new
    styled.fa.set_flow_style()
    return styled


def _overlays(directory: Path, name: str, chain: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The overlays of profile ``name``, its ``extends`` chain first (base before extension)."""
    profile = profile_file(directory, name)
    if name in chain:
        raise config.ConfigError(f"profile {chain[0]!r}: extends a cycle: {' -> '.join((*chain, name))}")
    overlay = parse_yaml(profile.read_text(), f"profile {name!r} ({profile})") or {}
    if not isinstance(overlay, dict):
        raise config.ConfigError(f"profile {name!r}: got {type(overlay).__name__}; allowed: a mapping")
    base = overlay.pop("extends", None)
    if base is None:
        return [overlay]
    if not isinstance(base, str):
        raise config.ConfigError(f"profile {name!r}: extends: got {base!r}; allowed: a profile name")
    return [*_overlays(directory, base, (*chain, name)), overlay]


def profiled(params_path: Path, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(params.yaml's values, the same with profile ``name`` applied), validated."""
    overlays = _overlays(params_path.parent / "profiles", name)
    base = parse_yaml(params_path.read_text(), f"params file {params_path}")
    if not isinstance(base, dict):
        raise config.ConfigError(f"params file {params_path}: got {type(base).__name__}; "
                                 "allowed: a mapping")
    result = copy.deepcopy(base)
    for overlay in overlays:
        _merge(result, overlay)
    config.from_dict(copy.deepcopy(result))
    return base, result


def apply_profile(params_path: Path, name: str) -> None:
    """Rewrite ``params_path`` with profile ``name`` applied (validated before it is written)."""
    profiled(params_path, name)  # every file and the result, validated first
    rt = YAML()
    rt.width = 4096  # a flow mapping on one line, as params.yaml writes them
    doc = rt.load(params_path.read_text())
    for overlay in _overlays(params_path.parent / "profiles", name):
        _merge(doc, overlay)
    buffer = io.StringIO()
    rt.dump(doc, buffer)
    config.from_dict(parse_yaml(buffer.getvalue(), f"params file {params_path} with {name!r}"))
    with atomic_output(params_path) as tmp:
        tmp.write_text(buffer.getvalue())


def hydra_value(value: Any, where: str) -> str:
    """``value`` in Hydra's override grammar, read back as the same YAML value by DVC."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)  # Hydra: inf, -inf, nan
    if isinstance(value, str):
        if "${" in value:  # an interpolation to OmegaConf, even quoted
            raise config.ConfigError(f"{where}: {value!r} holds '${{', which a DVC override "
                                     "cannot carry")
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(v, where) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_key(k, where)}:{hydra_value(v, f'{where}.{k}')}"
                              for k, v in value.items()) + "}"
    raise config.ConfigError(f"{where}: got {type(value).__name__}; a DVC override cannot carry it")


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise config.ConfigError(f"{where}: key {key!r} cannot be named in a DVC override "
                                 "(allowed: letters, digits, _ and -, not first a digit)")
    return key


def _diff(base: dict[str, Any], new: dict[str, Any], prefix: str) -> list[str]:
    out = []
    for key, value in new.items():
        path = prefix + _key(key, prefix + str(key))
        old = base.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            if set(old) <= set(value):  # keys added or changed: merged key by key, as DVC does
                out += _diff(old, value, path + ".")
            else:  # keys removed: DVC merges mappings, so delete it and add the new one whole
                out += [f"~{path}", f"+{path}={hydra_value(value, path)}"]
        elif key not in base:
            out.append(f"+{path}={hydra_value(value, path)}")
        elif hydra_value(old, path) != hydra_value(value, path):
            out.append(f"{path}={hydra_value(value, path)}")
    return out


def overrides(params_path: Path, name: str) -> list[str]:
    """The ``dvc exp run -S`` overrides that make ``params_path``'s values profile ``name``'s."""
    base, result = profiled(params_path, name)
    return _diff(base, result, "")

"""Reading YAML the way DVC does, and ``key.path=value`` overrides the way ``dvc exp run -S``
applies them: the text layer under :func:`initbench.config.load` and the profiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from initbench.config.checks import ConfigError


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (value parsed as YAML), like ``dvc exp run -S``.

    An empty value (``train.epochs=``) leaves the key as it is: that is how MLproject entry points
    say "use params.yaml" without defining a second default.
    """
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key.path=value")
        if text == "":
            continue
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
        node[leaf] = parse_yaml(text, f"override {item!r}")
    return raw


def parse_yaml(text: str, what: str) -> Any:
    """YAML read the way DVC reads it (ruamel, YAML 1.2: ``yes``/``no`` are strings), so
    initbench and DVC never see two different files; a duplicate key is an error, not "last wins"."""
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as err:
        problem, mark = getattr(err, "problem", None), getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        detail = f"{problem}{where}" if problem else " ".join(str(err).split())
        raise ConfigError(f"{what} is not valid YAML: {detail}") from None

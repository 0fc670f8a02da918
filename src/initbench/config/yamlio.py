"""Reading YAML the way DVC does, and ``key.path=value`` overrides the way ``dvc exp run -S``
applies them: the text layer under :func:`initbench.config.load` and the profiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent

from initbench.config.checks import ConfigError

MAX_DEPTH = 32  # params.yaml nests 5 deep


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
    """YAML read the way DVC reads it (ruamel, YAML 1.2: ``yes``/``no`` are strings, ``1e-3`` is
    the number 0.001), so initbench and DVC never see two different files; a duplicate key is an
    error, not "last wins"; an anchor or alias is refused (:func:`_refuse_aliases`)."""
    try:
        _refuse_aliases(text, what)
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as err:
        problem, mark = getattr(err, "problem", None), getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        detail = f"{problem}{where}" if problem else " ".join(str(err).split())
        raise ConfigError(f"{what} is not valid YAML: {detail}") from None


def _refuse_aliases(text: str, what: str) -> None:
    """Fail on the first anchor (``&a``) or alias (``*a``), and on nesting deeper than
    ``MAX_DEPTH``, from the parser's events, before any node is built. DVC accepts anchors, but a
    few nested aliases ("billion laughs") make a 7 KB file a structure of 10^9 elements, which
    every later walk over it (validation, an error message printing the value) expands until
    memory runs out; params never need them. Deep nesting would end in a RecursionError."""
    depth = 0
    for event in YAML(typ="safe", pure=True).parse(text):
        line = event.start_mark.line + 1
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{what}: line {line}: lists and mappings nested more than "
                                  f"{MAX_DEPTH} deep; allowed: at most {MAX_DEPTH} levels")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
        name = getattr(event, "anchor", None)
        if name is not None:
            kind = "alias *" if isinstance(event, AliasEvent) else "anchor &"
            raise ConfigError(
                f"{what}: line {line}: YAML {kind}{name} refused: initbench reads no anchors or "
                "aliases (DVC would accept them, but nested aliases can expand a small file "
                "beyond any memory); write the value out in full")

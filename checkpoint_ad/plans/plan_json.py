"""Plans as JSON text, the part both families share: one object led by ``schema_version`` and
``family`` ("chain" or "graph"), and the readers of its fields, each refusing a malformed
value with one :class:`~checkpoint_ad.errors.PlanError` line that names the field (led by the
reader's name: see :func:`reading`).

JSON has arrays but no tuples; plans hold tuples (never lists), so arrays in ``params`` and
``details`` are read back as tuples and a loaded plan equals the one written.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..checks import plain, shown
from ..errors import PlanError

SCHEMA_VERSION = 1
READERS = {"chain": "Plan.from_json", "graph": "GraphPlan.from_json"}
STEP_SHAPES = {"chain": (("action", "stage", "end"), 1),  # the entries of a step, the first
               "graph": (("action", "node"), 0)}          # step's number in messages


def dump_plan(family: str, fields: Mapping[str, Any]) -> str:
    """``fields`` of a plan of ``family`` as one JSON object, led by the schema version and
    the family. A field JSON cannot hold (a set, an object) raises :class:`PlanError`."""
    try:
        return json.dumps({"schema_version": SCHEMA_VERSION, "family": family, **fields},
                          default=_json_scalar)
    except (TypeError, ValueError) as error:
        raise PlanError(f"to_json: this {family} plan holds a value JSON cannot hold: "
                        f"{error}") from None


def _json_scalar(value: object) -> object:
    """A numpy scalar as the Python number it holds (``json.dumps``'s fallback)."""
    converted = plain(value)
    if converted is value:
        raise TypeError(f"{shown(value)} ({type(value).__name__}) is not JSON")
    return converted


def json_able(entries: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``entries`` that JSON can hold (informational details only: the others
    are left out)."""
    kept = {}
    for name, value in entries.items():
        try:
            json.dumps(value, default=_json_scalar)
        except (TypeError, ValueError):
            continue
        kept[name] = value
    return kept


@contextmanager
def reading(family: str) -> Iterator[None]:
    """Every :class:`PlanError` raised inside, led by the name of the family's reader
    (``Plan.from_json: steps must be a JSON array, got 3``)."""
    try:
        yield
    except PlanError as error:
        raise PlanError(f"{READERS[family]}: {error}") from None


def load_plan(text: str | bytes, family: str, fields: tuple[str, ...],
              optional: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fields of a plan of ``family`` read from JSON ``text``: a JSON object with
    ``schema_version`` 1, that family, exactly ``fields`` besides, and any of the ``optional``
    fields (added to schema version 1 later: absent, they take the value given); else
    :class:`PlanError`."""
    optional = dict(optional or {})
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise PlanError(f"not JSON: {error.msg} at line {error.lineno} column "
                        f"{error.colno}") from None
    except (TypeError, ValueError, RecursionError) as error:
        raise PlanError(f"not JSON text: {' '.join(str(error).split())[:120]}") from None
    if not isinstance(data, dict):
        raise PlanError(f"expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise PlanError(f"schema_version {shown(version)} is not supported (this "
                        f"package reads version {SCHEMA_VERSION})")
    other = data.get("family")
    if other != family:
        known = isinstance(other, str) and other in READERS
        reader = f"; read it with {READERS[other]}" if known else ""
        raise PlanError(f"family must be {family!r}, got {shown(other)}{reader}")
    expected = {"schema_version", "family", *fields, *optional}
    missing = [name for name in fields if name not in data]
    unknown = sorted(set(data) - expected)
    if missing or unknown:
        problem = f"missing field {missing[0]!r}" if missing else f"unknown field {unknown[0]!r}"
        also = f"; optional: {', '.join(optional)}" if optional else ""
        raise PlanError(f"{problem} (a {family} plan has {', '.join(fields)}{also})")
    return {**optional, **data}


def read_field(data: Mapping[str, Any], name: str, check: Callable[..., Any], *,
               optional: bool = False, **options: Any) -> Any:
    """``data[name]`` through ``check`` (a validator of :mod:`checkpoint_ad.checks`, given
    ``options``), its message naming the field; ``optional``: None is kept."""
    value = data[name]
    if optional and value is None:
        return None
    return check(value, name, error=PlanError, **options)


def text_field(data: Mapping[str, Any], name: str) -> str:
    """``data[name]``, which must be a string."""
    value = data[name]
    if not isinstance(value, str):
        raise PlanError(f"{name} must be a string, got {shown(value)}")
    return value


def mapping_field(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``data[name]``, which must be a JSON object, its arrays (at any depth) as tuples."""
    value = data[name]
    if not isinstance(value, dict):
        raise PlanError(f"{name} must be a JSON object, got {shown(value)}")
    return {key: _tuples(entry) for key, entry in value.items()}


def _tuples(value: Any) -> Any:
    """``value`` read from JSON with its arrays as tuples (plans hold tuples, never lists)."""
    if isinstance(value, list):
        return tuple(_tuples(entry) for entry in value)
    if isinstance(value, dict):
        return {key: _tuples(entry) for key, entry in value.items()}
    return value


def steps_field(data: Mapping[str, Any], family: str) -> list[list[Any]]:
    """``data["steps"]``: a JSON array of steps, each an array of the family's shape
    (:data:`STEP_SHAPES`) whose first entry is a string (the action); the other entries are
    the caller's to check. Steps are numbered as the family's checker numbers them."""
    steps = data["steps"]
    if not isinstance(steps, list):
        raise PlanError(f"steps must be a JSON array, got {shown(steps)}")
    shape, first = STEP_SHAPES[family]
    for number, step in enumerate(steps, first):
        if not (isinstance(step, list) and len(step) == len(shape) and isinstance(step[0], str)):
            raise PlanError(f"step {number} must be [{', '.join(shape)}], got "
                            f"{shown(step)}")
    return steps

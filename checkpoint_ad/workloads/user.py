"""Your own workloads: a function ``build(**sizes)`` in a Python file or an importable module,
named ``path/to/file.py:build`` or ``package.module:build`` wherever a workload's name is
asked (``--workload``, ``workload = ...`` in an experiment file). The function may have any
name; the part after the last colon names it.

What ``build`` returns decides the workload's family:

* ``(chain, x0)``, a :class:`~checkpoint_ad.chains.chain.Chain` and its input array: a chain
  workload, planned by the chain policies (the loss is the sum of ``x_n``, as for the built-in
  chains). Its size ``n`` is the chain's number of stages: recorded so when ``build`` takes no
  ``n``, refused when ``build`` was given another;
* ``(fn, args)``, a function of arrays returning a scalar and the tuple (or list) of its
  positional arguments, every one differentiated: a graph workload, planned by the graph
  policies.

``build`` is called with the sizes given (``--size KEY=VALUE``, ``sizes`` in an experiment) as
keyword arguments, and nothing else: no seed and no dtype. It must return the same arrays on
every call (draw them from a fixed seed), because every point of a sweep rebuilds the workload
in a fresh worker process from its reference, and every array it returns must already have the
run's dtype (float64 unless ``--dtype`` or an experiment's ``dtype`` says otherwise). The
sizes a point records are those given and ``build``'s own defaults that are numbers, strings or
booleans.

A file is imported by its path (relative paths from the current folder; an experiment file
resolves them from its own folder, :func:`resolve_reference`), once per process while it is
unchanged; a module by its name, so it must be importable (installed, or on ``PYTHONPATH``).
Every mistake is one :class:`~checkpoint_ad.errors.ExperimentError` line naming the reference:
no such file, a module whose import raises, no such function, a size ``build`` does not take
or needs, ``build`` raising, or returning something else, and a numpy function applied to a
value being differentiated in the function or a stage it returns.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..chains.chain import Chain, Stage
from ..engine.backend import ARRAY_TYPES
from ..engine.trees import flatten
from ..errors import CheckpointADError, ExperimentError
from . import chain_models, graph_models
from .chain_models import Workload
from .graph_models import GraphWorkload
from .spec import check_dtype

SEPARATOR = ":"  # FILE.py:FUNCTION, MODULE:FUNCTION; registered names hold no colon
PLAIN = (bool, int, float, str)  # the size values a record can hold
EXPECTED = ("(chain, x0), a checkpoint_ad.Chain and its input array, or (fn, args), a "
            "function of arrays returning a scalar and the tuple of its positional arguments")
KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)

AnyWorkload = Workload | GraphWorkload


def is_user_reference(name: str) -> bool:
    """Whether workload ``name`` names a user's function (``FILE.py:FUNCTION`` or
    ``MODULE:FUNCTION``) rather than a registered workload."""
    return SEPARATOR in name


def _names_a_file(place: str) -> bool:
    """Whether the part before the colon is a file's path (else a module's dotted name)."""
    return place.endswith(".py") or "/" in place or os.sep in place


def resolve_reference(name: str, folder: str | os.PathLike[str]) -> str:
    """``name`` with a relative file path taken from ``folder`` (an experiment file's folder);
    absolute paths, module references and registered names are returned unchanged."""
    if not is_user_reference(name):
        return name
    place, _, function = name.rpartition(SEPARATOR)
    if not _names_a_file(place) or Path(place).is_absolute():
        return name
    return f"{Path(folder) / place}{SEPARATOR}{function}"


def family_of(workload: AnyWorkload) -> str:
    """"graph" for a built graph workload, "chain" for a chain workload."""
    return "graph" if isinstance(workload, GraphWorkload) else "chain"


def build_workload(name: str, sizes: Mapping[str, Any] | None = None, seed: int = 0,
                   dtype: str = "float64", family: str | None = None) -> AnyWorkload:
    """Any workload by name: a user's function (see the module docstring; ``seed`` does not
    reach it) or a registered workload of ``family`` (as
    :func:`~.graph_models.workload_family` finds it). ``family``, when given, must be what a
    user's function returns."""
    if not is_user_reference(name):
        if graph_models.workload_family(name, family) == "graph":
            return graph_models.build_graph(name, sizes, seed, dtype)
        return chain_models.build(name, sizes, seed, dtype)
    built = UserWorkload.parse(name).build(sizes, dtype)
    if family is not None and family_of(built) != family:
        raise ExperimentError(f"workload {name!r} returned a {family_of(built)} workload, but "
                              f"the family asked for is {family} (--family, or family in an "
                              f"experiment)")
    return built


def workload_family(name: str, family: str | None = None,
                    sizes: Mapping[str, Any] | None = None, dtype: str = "float64") -> str:
    """The family ("chain" or "graph") of any workload: a registered one's as
    :func:`~.graph_models.workload_family` says, a user's from what it returns with ``sizes``
    (built once to learn it)."""
    if not is_user_reference(name):
        return graph_models.workload_family(name, family)
    return family_of(build_workload(name, sizes, dtype=dtype, family=family))


@functools.lru_cache(maxsize=32)
def _import_file(path: Path, stamp: tuple[int, int]) -> ModuleType:
    """The module of file ``path`` (absolute), imported once while its (modification time,
    size) ``stamp`` holds. It is entered in ``sys.modules`` under a name made from its path,
    as an import would, so that what looks its module up by name (dataclasses) works."""
    name = "checkpoint_ad_user_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path.name} is not a Python file (.py)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _described(error: BaseException) -> str:
    """``Type: message`` on one line."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


@dataclass(frozen=True)
class UserWorkload:
    """A user's workload reference, parsed: ``place`` (a file's path or a module's name) and
    the ``function`` in it. It answers what a registered
    :class:`~.spec.WorkloadSpec` answers to experiment checks (``name``, ``defaults()``,
    ``resolve(sizes)``), and :meth:`build` builds it."""

    name: str
    place: str
    function: str

    @classmethod
    def parse(cls, name: str) -> UserWorkload:
        place, _, function = name.rpartition(SEPARATOR)
        if not place or not function.isidentifier():
            raise ExperimentError(f"workload {name!r}: expected FILE.py:FUNCTION or "
                                  f"MODULE:FUNCTION, such as model.py:build")
        return cls(name, place, function)

    def error(self, message: str) -> ExperimentError:
        return ExperimentError(f"workload {self.name!r}: {message}")

    def module(self) -> ModuleType:
        """The file or module, imported (the user's code runs: any exception it raises is
        named in one line)."""
        path = Path(self.place).resolve() if _names_a_file(self.place) else None
        if path is not None and not path.is_file():
            raise self.error(f"file {self.place} not found")
        try:
            if path is None:
                return importlib.import_module(self.place)
            status = path.stat()
            return _import_file(path, (status.st_mtime_ns, status.st_size))
        except Exception as error:  # noqa: BLE001  (the user's code: any exception)
            raise self.error(f"importing {self.place} raised {_described(error)}") from None

    def builder(self) -> Callable[..., Any]:
        """The function named after the colon."""
        found = getattr(self.module(), self.function, None)
        if found is None:
            raise self.error(f"{self.place} has no function {self.function!r}")
        if not callable(found):
            raise self.error(f"{self.place}: {self.function} is a {type(found).__name__}, "
                             f"not a function")
        return found

    def defaults(self) -> dict[str, Any]:
        """The function's keyword defaults that a record can hold (numbers, strings, booleans)."""
        return _plain_defaults(self.builder())

    def resolve(self, sizes: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The defaults overridden by ``sizes``; refuses a size the function does not take, a
        size it needs and was not given, and a value a record cannot hold."""
        return self._resolved(self.builder(), dict(sizes or {}))

    def _resolved(self, function: Callable[..., Any], sizes: dict[str, Any]) -> dict[str, Any]:
        for key, value in sizes.items():
            finite = not isinstance(value, float) or math.isfinite(value)
            if not (isinstance(value, PLAIN) and finite):
                raise self.error(f"size {key} must be a finite number, true, false or a "
                                 f"string, got {value!r}")
        try:
            parameters = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):  # no signature to read: the call will tell
            return sizes
        named = [p.name for p in parameters if p.kind in KEYWORD_KINDS]
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            unknown = [key for key in sizes if key not in named]
            if unknown:
                raise self.error(f"{self.function} takes no size {', '.join(unknown)} (its "
                                 f"sizes: {', '.join(named) or 'none'})")
        missing = [p.name for p in parameters if p.kind in KEYWORD_KINDS
                   and p.default is inspect.Parameter.empty and p.name not in sizes]
        if missing:
            raise self.error(f"{self.function} needs size {', '.join(missing)} (--size "
                             f"{missing[0]}=VALUE, or sizes in an experiment)")
        return {**_plain_defaults(function), **sizes}

    def build(self, sizes: Mapping[str, Any] | None = None, dtype: str = "float64"
              ) -> AnyWorkload:
        """Call the function with the resolved sizes and wrap what it returns as the built-in
        workloads are (see the module docstring)."""
        function = self.builder()
        resolved = self._resolved(function, dict(sizes or {}))
        called = f"{self.function}({', '.join(f'{k}={v!r}' for k, v in resolved.items())})"
        try:
            returned = function(**resolved)
        except Exception as error:  # noqa: BLE001  (the user's code: any exception)
            raise self.error(f"{called} raised {_described(error)}") from None
        if isinstance(returned, (tuple, list)) and len(returned) == 2:
            first, second = returned
            if isinstance(first, Chain) and isinstance(second, ARRAY_TYPES):
                self._check_dtype(called, [second, *first.parameter_groups()], dtype)
                return Workload(self.name, self._with_stages(called, resolved, first.n),
                                self._guarded_chain(first), second)
            if callable(first) and isinstance(second, (tuple, list)) and second:
                self._check_dtype(called, second, dtype)
                return GraphWorkload(self.name, resolved, self._guarded(first), tuple(second))
        raise self.error(f"{called} returned {_shown(returned)}; expected {EXPECTED}")

    def _guarded(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` (the graph's, or a stage's) refusing in one line the commonest mistake
        in it: a numpy function applied to a value being differentiated, which numpy refuses
        with a TypeError naming checkpoint_ad's Tracer. Anything else passes unchanged."""
        @functools.wraps(function)
        def guarded(*args: Any) -> Any:
            try:
                return function(*args)
            except TypeError as error:
                if "Tracer" not in str(error) or isinstance(error, CheckpointADError):
                    raise
                raise self.error(f"{getattr(function, '__name__', 'its function')} applied "
                                 f"numpy to a value being differentiated "
                                 f"({_described(error)}); use checkpoint_ad's ops on it "
                                 f"(ca.tanh, ca.sum, @, ...)") from None
        return guarded

    def _guarded_chain(self, chain: Chain) -> Chain:
        """``chain`` with each stage function :meth:`_guarded` (one guard per function, so
        stages sharing one still share it)."""
        guards: dict[int, Callable[..., Any]] = {}
        for stage in chain.stages:
            guards.setdefault(id(stage.fn), self._guarded(stage.fn))
        return Chain([Stage(guards[id(stage.fn)], stage.params, stage.name)
                      for stage in chain.stages])

    def _with_stages(self, called: str, sizes: dict[str, Any], stages: int) -> dict[str, Any]:
        """A chain workload's sizes with ``n``, its number of stages (see the module
        docstring)."""
        if sizes.get("n", stages) != stages:
            raise self.error(f"{called} returned a chain of {stages} stages; a chain "
                             f"workload's size n is its number of stages (give yours another "
                             f"name, such as layers)")
        return {**sizes, "n": stages}

    def _check_dtype(self, called: str, arrays: Any, dtype: str) -> None:
        wanted = check_dtype(dtype)
        for leaf in flatten(list(arrays))[0]:
            found = getattr(leaf, "dtype", None)
            if found is not None and found != wanted:
                raise self.error(f"{called} returned an array of dtype {found}, but the run's "
                                 f"dtype is {wanted} (--dtype, or dtype in an experiment); "
                                 f"every array must have it")


def _plain_defaults(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters
            if p.kind in KEYWORD_KINDS and isinstance(p.default, PLAIN)}


def _shown(value: Any) -> str:
    """What a function returned, in a few words: its type, and its items' types if a pair."""
    if isinstance(value, (tuple, list)):
        items = ", ".join(type(item).__name__ for item in value[:3])
        more = ", ..." if len(value) > 3 else ""
        return f"a {type(value).__name__} of {len(value)} ({items}{more})"
    return "None" if value is None else f"a {type(value).__name__}"

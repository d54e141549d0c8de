"""Argument values and options shared by the ``checkpoint-ad`` commands: the ``type=``
validators (whole numbers, byte counts with units, ``--policies`` lists) and the builders of
the options every registered policy parameter and workload size gets."""
from __future__ import annotations

import argparse
import decimal
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from ..chains import policies
from ..graphs import policies as graph_policies
from ..workloads import chain_models, graph_models
from ..lab.points import BACKENDS, COST_MODES
from ..errors import ExperimentError
from ..lab.specs import MAX_REPEATS

PROG = "checkpoint-ad"


# -- what is being done (named by main's one line if memory or recursion run out) ------------------

ACTIVITY = ["reading the command line"]


@contextmanager
def doing(what: str) -> Iterator[None]:
    """Name what the command is doing while the block runs (``ACTIVITY[-1]``); :func:`main`
    names it when memory, recursion or an encoding fails there (so an exception leaves it in
    place, and main starts each command afresh)."""
    ACTIVITY.append(what)
    yield
    ACTIVITY.pop()


# -- value parsers (argparse ``type=``) ------------------------------------------------------------

LARGEST_WHOLE = 2**63 - 1  # numpy's largest integer: any count or size above it cannot work
TOO_LONG = 30  # digits: a whole number typed with more is refused before it is converted


def _whole_number(text: str, least: int, requirement: str, most: int = LARGEST_WHOLE) -> int:
    digits = text.strip().lstrip("+-")
    try:
        value = int(text) if len(digits) <= TOO_LONG or not digits.isdigit() else \
            (least - 1 if text.strip().startswith("-") else most + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {requirement}, got {value}")
    if value > most:
        raise argparse.ArgumentTypeError(f"expected {requirement} at most {most:,}, got "
                                         f"{text.strip()[:40]}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1, "a positive whole number")


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "a whole number >= 0")


def repeat_count(text: str) -> int:
    """A number of timed repeats: 1 to :data:`~checkpoint_ad.lab.specs.MAX_REPEATS`."""
    return _whole_number(text, 1, "a positive whole number", MAX_REPEATS)


BYTE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
              "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
BYTES_HELP = "plain bytes or with a unit: 800000, 64MiB, 1.5GB (kB, MB, GB: powers of 1000; " \
             "KiB, MiB, GiB: of 1024)"


NAMES_HELP = " (names joined by +, such as matmul+tanh; in --policies: save_ops:ops=matmul+tanh)"


def byte_count(text: str) -> int:
    """``800000``, ``64MiB``, ``1.5GB`` ... → a positive whole number of bytes (rounded down)."""
    found = re.fullmatch(r"\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = found[2].lower() if found else None
    valid = found is not None and unit in BYTE_UNITS
    given = decimal.Decimal(found[1]) if valid else decimal.Decimal(0)
    # the exponent first: 1e999999999 is never expanded, nor multiplied (decimal.Overflow)
    exact = given * BYTE_UNITS.get(unit, 0) if given.adjusted() < 30 else given
    if exact > LARGEST_WHOLE:
        raise argparse.ArgumentTypeError(f"expected at most {LARGEST_WHOLE:,} bytes (8 EiB), "
                                         f"got {text.strip()[:40]!r}")
    value = int(exact)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of bytes such as 800000, "
                                         f"64MiB or 1.5GB, got {text!r}")
    return value


def boolean(text: str) -> bool:
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    try:
        return words[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def bandwidth(text: str) -> float:
    """``--bandwidth``: a finite number of bytes per cost unit >= 0 (0: no offload)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number of bytes per cost unit "
                                         f">= 0 (0: no offload), got {text!r}")
    return value


def literal(text: str) -> Any:
    """A command-line value as int, float, bool or string, in that order of preference."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    try:
        return boolean(text)
    except argparse.ArgumentTypeError:
        return text


def size_assignment(text: str) -> tuple[str, Any]:
    """``--size KEY=VALUE`` → (key, value), the value read as :func:`literal` reads it."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, such as n=8, got {text!r}")
    return key.strip(), literal(value.strip())


TYPES: dict[type, Callable[[str], Any]] = {int: positive_int, float: number, bool: boolean,
                                           str: str}


def parse_policies(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``store_all,sqrt_n,revolve:slots=8,optimal:slots=4:tapes=false`` → (name, params)."""
    configurations = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, *assignments = item.split(":")
        params = {}
        for assignment in assignments:
            key, equals, value = assignment.partition("=")
            if not equals or not key:
                raise ExperimentError(f"--policies: expected key=value after {name!r}, "
                                      f"got {assignment!r}")
            if key.strip() in params:
                raise ExperimentError(f"--policies: {item}: {key.strip()} is given twice; give "
                                      f"each parameter once")
            params[key.strip()] = _policy_value(name, key.strip(), value)
        configurations.append((name.strip(), params))
    if not configurations:
        raise ExperimentError("--policies names no policy")
    return configurations


def _policy_value(policy: str, key: str, text: str) -> Any:
    """One ``--policies`` value: bytes for ``*_bytes``, names joined by ``+`` for a parameter
    that takes names (``ops=matmul+tanh``), else :func:`literal`."""
    names = {**registered_policy_parameters(), **registered_graph_policy_parameters()}
    parse = (byte_count if key.endswith("_bytes") else op_names
             if key in names and names[key][0].kind is tuple else literal)
    try:
        return parse(text.strip())
    except argparse.ArgumentTypeError as error:
        raise ExperimentError(f"--policies: {policy}:{key}: {error}") from None


def op_names(text: str) -> tuple[str, ...]:
    """``matmul+tanh`` (or ``matmul,tanh`` where commas are free) → ``("matmul", "tanh")``: a
    parameter that takes names (``save_ops``'s ``ops``)."""
    names = tuple(name.strip() for name in re.split(r"[+,]", text) if name.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected names joined by +, such as matmul+tanh, "
                                         f"got {text!r}")
    return names


# -- option builders shared by commands ------------------------------------------------------------

def _dest(name: str) -> str:
    return f"option_{name}"


def parameters_by_name(names: Sequence[str], get: Callable[[str], Any]
                       ) -> dict[str, tuple[Any, list[str]]]:
    """Each parameter name of the registered entries ``names`` (``get(name).parameters``) →
    its first spec and the entries that take it, in first-seen order."""
    found: dict[str, tuple[Any, list[str]]] = {}
    for name in names:
        for parameter in get(name).parameters:
            found.setdefault(parameter.name, (parameter, []))[1].append(name)
    return found


def registered_policy_parameters() -> dict[str, tuple[Any, list[str]]]:
    """The parameters of every registered policy (see :func:`parameters_by_name`)."""
    return parameters_by_name(policies.names(), policies.get_policy)


def registered_graph_policy_parameters() -> dict[str, tuple[Any, list[str]]]:
    """The parameters of every registered graph policy (see :func:`parameters_by_name`)."""
    return parameters_by_name(graph_policies.names(), graph_policies.get_policy)


def registered_sizes() -> dict[str, tuple[chain_models.SizeParameter, list[str]]]:
    """The sizes of every registered workload, chain and graph (see
    :func:`parameters_by_name`); graph workloads are named ``NAME (graph)``."""
    found = parameters_by_name(chain_models.names(), chain_models.get_workload)
    for name, (parameter, owners) in parameters_by_name(
            graph_models.graph_names(), graph_models.get_graph_workload).items():
        found.setdefault(name, (parameter, []))[1].extend(f"{o} (graph)" for o in owners)
    return found


def add_policy_options(parser: argparse.ArgumentParser) -> None:
    """One option per parameter of any registered policy (``--slots``, ``--segments``...)."""
    group = parser.add_argument_group("policy parameters (each applies to the policies named)")
    for name, (parameter, owners) in registered_policy_parameters().items():
        in_bytes = name.endswith("_bytes")
        group.add_argument(f"--{name.replace('_', '-')}", dest=_dest(name),
                           type=byte_count if in_bytes else TYPES.get(parameter.kind, literal),
                           metavar="BYTES" if in_bytes else parameter.kind.__name__.upper(),
                           help=f"{parameter.help}{'; ' + BYTES_HELP if in_bytes else ''} "
                                f"[{', '.join(owners)}]")


def add_graph_policy_options(parser: argparse.ArgumentParser) -> None:
    """One option per parameter of a graph policy that no chain policy has (``--time-limit``,
    ``--heuristic``...); the shared ones (``--budget-bytes``, ``--segments``) are
    :func:`add_policy_options`'s."""
    group = parser.add_argument_group("graph policy parameters (each applies to the graph "
                                      "policies named)")
    chain = registered_policy_parameters()
    for name, (parameter, owners) in registered_graph_policy_parameters().items():
        if name in chain:
            continue
        names = parameter.kind is tuple
        kind = (op_names if names else non_negative_int
                if parameter.kind is int and parameter.default == 0
                else TYPES.get(parameter.kind, literal))
        group.add_argument(f"--{name.replace('_', '-')}", dest=_dest(name), type=kind,
                           metavar="NAMES" if names else parameter.kind.__name__.upper(),
                           help=f"{parameter.help}{NAMES_HELP if names else ''} "
                                f"[{', '.join(owners)}]")


def add_size_options(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    """One option per size of any registered workload (``--n``, ``--width``...), and
    ``--size KEY=VALUE`` for any size of any workload (a user's above all); unset ones
    default. ``skip``: sizes the command defines itself (``plan --n``)."""
    group = parser.add_argument_group("workload sizes (defaults: see `checkpoint-ad list`)")
    group.add_argument("--size", action="append", type=size_assignment, metavar="KEY=VALUE",
                       help="a size of any workload, repeatable; the one way to size your own "
                            "(--workload FILE.py:FUNCTION gets them as keyword arguments); "
                            "VALUE is read as a whole number, a number, true or false (yes, "
                            "no), else a string")
    for name, (parameter, owners) in registered_sizes().items():
        if name in skip:
            continue
        choices = f" (one of {', '.join(parameter.choices)})" if parameter.choices else ""
        group.add_argument(f"--{name}", dest=_dest(name), type=TYPES.get(parameter.kind, str),
                           metavar=parameter.kind.__name__.upper(),
                           help=f"{parameter.help}{choices} [{', '.join(owners)}]")


def add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="numpy",
                        help="numpy: the package's own engine (default); torch: the workload "
                             "rebuilt as torch modules with the same weights (workloads "
                             f"{', '.join(chain_models.TORCH_EQUIVALENTS)}; needs PyTorch)")


def add_max_memory(parser: argparse.ArgumentParser, consequence: str) -> None:
    parser.add_argument("--max-memory", type=byte_count, metavar="BYTES",
                        help=f"refuse, before anything runs, points whose predicted peak of "
                             f"activation bytes (checkpoints, tapes, working value, cotangents; "
                             f"parameters apart) exceeds BYTES: {consequence}; {BYTES_HELP}")


def given_sizes(args: argparse.Namespace, **own: Any) -> dict[str, Any]:
    """The workload sizes the command line gave: the options of :func:`add_size_options`, and
    ``own`` ones the command defines itself (``plan``'s ``n``) that are not None. A size given
    twice is refused."""
    named = {**given_options(args, sorted(registered_sizes())),
             **{key: value for key, value in own.items() if value is not None}}
    sizes: dict[str, Any] = {}
    for key, value in [*named.items(), *(args.size or [])]:
        if key in sizes:
            raise ExperimentError(f"size {key} is given twice; give each size once")
        sizes[key] = value
    return sizes


def given_options(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The options among ``names`` (built above) that the command line gave, by name."""
    return {name: getattr(args, _dest(name)) for name in names
            if getattr(args, _dest(name), None) is not None}


# -- the parser's pieces ------------------------------------------------------------------------

Formatter = argparse.RawDescriptionHelpFormatter


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr, ``checkpoint-ad: error:
    ...`` and a pointer to the command's --help, with exit status 2 (no usage dump). Its
    subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        self.exit(2, f"{PROG}: error: {message} (see `{self.prog} --help`)\n")


def new_command(subparsers: Any, name: str, help_text: str, description: str, examples: str
                ) -> argparse.ArgumentParser:
    """A subcommand's parser with its help, description and examples."""
    return subparsers.add_parser(name, help=help_text, description=description,
                                 epilog="examples:\n" + examples, formatter_class=Formatter)


def add_input_options(parser: argparse.ArgumentParser, costs_help: str) -> None:
    """``--seed``, ``--dtype`` and ``--costs``: how a workload's inputs are drawn and costed."""
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of inputs and weights (a whole number >= 0)")
    parser.add_argument("--dtype", default="float64", help="float32 or float64")
    parser.add_argument("--costs", default="model", choices=COST_MODES, help=costs_help)

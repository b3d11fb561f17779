"""The library entry points: one function per command, each returning a result object.

These are what the CLI does, without the printing: lint specs, compile one,
decompile a payload, diff two tables, replay traces, verify on real kernels.
Each imports its module when first called, so ``import hvcfilter.api`` stays
cheap. Result types are documented in the modules named in each docstring.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hvcfilter.errors import HvcFilterError
from hvcfilter.inputs import read_input, unreadable

if TYPE_CHECKING:
    from hvcfilter.learn.run import LearnResult
    from hvcfilter.lint import LintReport
    from hvcfilter.replay import ReplayReport
    from hvcfilter.table.compiler import CompileResult
    from hvcfilter.table.decompiler import DecompileResult
    from hvcfilter.table.files import DiffResult
    from hvcfilter.verify import VerifyResult

__all__ = ["compile", "decompile", "diff", "learn", "lint", "replay", "verify"]


def lint(paths: Iterable[str | Path]) -> LintReport:
    """Lint spec files (``hvcfilter check``); see :class:`hvcfilter.lint.LintReport`.

    Bad input never raises: unreadable files and syntax errors are diagnostics.
    """
    from hvcfilter.lint import lint as _lint

    return _lint(paths)


def compile(  # shadows the builtin on purpose: callers write api.compile
    path: str | Path, *, merge: bool = True, kernel: str | None = None
) -> CompileResult:
    """Compile one spec (``hvcfilter compile``); a spec with errors gives no table.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
    """
    from hvcfilter.table.compiler import compile_file

    return compile_file(path, merge=merge, kernel=kernel)


def decompile(data: bytes, filename: str = "<payload>") -> DecompileResult:
    """Validate a payload and turn it into a canonical spec (``hvcfilter decompile``).

    Problems with the records are diagnostics in the result, not exceptions.

    Raises:
        PayloadError: ``data`` is a TOML spec, not a payload.
    """
    from hvcfilter.table.decompiler import decompile as _decompile

    return _decompile(data, filename)


def diff(a: str | Path, b: str | Path, *, kernel: str | None = None) -> DiffResult:
    """Compare two specs or payloads by effective action (``hvcfilter diff``).

    Raises:
        HvcFilterError: a file cannot be read.
        UnknownProfileError: ``kernel`` names no profile.
    """
    from hvcfilter.table.files import diff_files

    return diff_files(_read(a), _read(b), kernel=kernel)


def _read(path: str | Path) -> tuple[str, bytes]:
    try:
        return str(path), read_input(str(path))
    except OSError as exc:
        raise HvcFilterError(f"cannot read {path}: {unreadable(exc)}") from exc


def replay(
    traces: Sequence[str],
    *,
    spec: str | None = None,
    payload: str | None = None,
    kernel: str | None = None,
    baseline: str | None = None,
) -> ReplayReport:
    """Replay traces through the emulated kernel (``hvcfilter simulate``).

    Without ``spec`` or ``payload``, ``./hvcfilter.toml`` is used if it
    exists, else no filter.

    Raises:
        HvcFilterError: a table or trace cannot be read (SpecError, PayloadError, TraceError).
    """
    from hvcfilter.replay import Replayer
    from hvcfilter.table.files import load_baseline, load_table

    table = load_table(spec, payload, kernel=kernel)
    base = load_baseline(baseline, kernel=kernel) if baseline is not None else None
    return Replayer(table, kernel=kernel, baseline=base).replay(list(traces))


def learn(
    traces: Sequence[str] = (),
    *,
    tallies: Sequence[str] = (),
    kernel: str | None = None,
    granularity: str = "function",
    forward: Sequence[str] = (),
    handle: Sequence[str] = (),
    jobs: int = 1,
) -> LearnResult:
    """The least-privilege spec for traces and/or tally files (``hvcfilter learn``).

    The result holds the derivation (``learned``), the spec ``text`` and the
    ``spec`` model (:class:`hvcfilter.model.FilterSpec`). Tallies carry their
    kernel; ``kernel`` applies to the traces.

    Raises:
        HvcFilterError: a trace or tally cannot be read, there are no calls,
            or the inputs are of different kernels (TraceError, LearnError).
    """
    from hvcfilter.learn import Granularity, merge, parse_override
    from hvcfilter.learn.run import learn as _learn
    from hvcfilter.learn.run import read_tallies, tally_traces

    parts = []
    if traces:
        parts.append(tally_traces(traces, kernel=kernel, jobs=jobs))
    if tallies:
        parts.append(read_tallies(tallies))
    overrides = [parse_override(f, "fwd_to_user") for f in forward]
    overrides += [parse_override(h, "handle") for h in handle]
    return _learn(merge(parts), granularity=Granularity(granularity), overrides=overrides)


def verify(spec: str | Path, trace: str | None = None, kernels: Sequence[str] = ()) -> VerifyResult:
    """Install a spec on real kernels booted under QEMU and compare with the emulator.

    Raises:
        LabError: the lab is not prepared (``hvcfilter lab setup``).
    """
    from hvcfilter.verify import verify as _verify

    return _verify(spec, trace, kernels)

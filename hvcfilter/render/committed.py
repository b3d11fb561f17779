"""Rendering for ``compile-check``: one line per pair, the diff of a stale output, or JSON.

Text: ``ok vm.toml -> vm.bin``, ``STALE vm.toml -> vm.bin`` followed by a
unified diff (records, for binary payloads) and the command that refreshes
it; a spec that no longer compiles shows its findings as ``check`` does.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from hvcfilter.emit.committed import Freshness, Status
from hvcfilter.render.compile import diagnostics_text
from hvcfilter.utf8 import json_text

__all__ = ["COMPILE_CHECK_FORMAT_TAG", "compile_check_json", "compile_check_text"]

COMPILE_CHECK_FORMAT_TAG = "hvcfilter-compile-check-v1"


def _refresh(item: Freshness, options: Sequence[str]) -> str:
    pair = item.pair
    args = ["hvcfilter", "compile", pair.spec, "-o", pair.output]
    if pair.fmt.value != "bin":
        args += ["--format", pair.fmt.value]
    return shlex.join([*args, *options])


def compile_check_text(results: Sequence[Freshness], options: Sequence[str] = ()) -> str:
    """One line per pair; stale ones add their diff and the command that refreshes them.

    ``options`` are the compile options the outputs were checked against
    (``--no-merge``, ``--byte-order big``, ``--kernel 6.12``): the refresh
    command must pass them too, or what it writes is stale again.
    """
    out: list[str] = []
    for item in results:
        pair = item.pair
        # Upper case marks what needs a hand; "ok" lines are the quiet majority.
        word = "ok" if item.status is Status.FRESH else item.status.name
        out.append(f"{word} {pair.spec} -> {pair.output}")
        match item.status:
            case Status.STALE:
                out.extend(item.diff)
                out.append(f"refresh it: {_refresh(item, options)}")
            case Status.MISSING:
                out.append(f"{pair.output} does not exist: {_refresh(item, options)}")
            case Status.BROKEN:
                out.append(diagnostics_text(item.diagnostics).rstrip("\n"))
            case Status.FRESH:
                pass
    stale = sum(1 for item in results if item.status is not Status.FRESH)
    out.append(f"compile-check: {len(results)} pair(s), {stale} not up to date")
    return "\n".join(out) + "\n"


def compile_check_json(results: Sequence[Freshness], options: Sequence[str] = ()) -> str:
    """The same as a versioned JSON document; ``refresh`` is the command, None when fresh."""
    document = {
        "format": COMPILE_CHECK_FORMAT_TAG,
        "pairs": [
            {
                "spec": item.pair.spec,
                "output": item.pair.output,
                "format": item.pair.fmt.value,
                "status": item.status.value,
                "refresh": _refresh(item, options)
                if item.status in (Status.STALE, Status.MISSING)
                else None,
                "diff": list(item.diff),
                "diagnostics": [
                    {"code": d.code, "severity": d.severity.label, "message": d.message}
                    for d in item.diagnostics
                ],
            }
            for item in results
        ],
    }
    return json_text(document, indent=2) + "\n"

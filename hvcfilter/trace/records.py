"""The JSON Lines and CSV trace formats: one call per line or row, every field explicit.

Fields: ``x0`` (the full register; W0 is the function ID), optional
``x1``-``x3``, ``conduit`` (``hvc``/``smc``),
``imm`` and ``mode`` (``a64``/``a32``/``t32``). A bad record is counted and
kept as a :class:`~hvcfilter.trace.events.BadLine`, never fatal.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import re
from collections.abc import Iterator
from typing import Any

from hvcfilter.errors import TraceError
from hvcfilter.smccc import CONDUITS, MODES, Conduit, Mode
from hvcfilter.trace.events import Progress, TraceEvent, TraceTally
from hvcfilter.trace.sources import Source, chunks

__all__ = ["csv_events", "jsonl_events"]


class _RecordError(ValueError):
    """One field of a JSON Lines or CSV record is wrong; the message names the field."""


def _register(name: str, value: Any, *, bits: int = 64) -> int:
    if isinstance(value, bool) or value is None:
        raise _RecordError(f"field {name!r}: expected an integer or a hex string, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            if not text.isascii():  # int() would read full-width or Arabic-Indic digits
                raise ValueError(text)
            number = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        except ValueError:
            raise _RecordError(f"field {name!r}: {value!r} is not a number") from None
    else:
        raise _RecordError(f"field {name!r}: expected an integer or a hex string, got {value!r}")
    if not 0 <= number < 1 << bits:
        raise _RecordError(f"field {name!r}: {value!r} does not fit {bits} bits")
    return number


def _conduit(value: Any) -> Conduit:
    text = value.strip().lower() if isinstance(value, str) else value
    if value is None or text == "hvc":
        return "hvc"
    if text == "smc":
        return "smc"
    raise _RecordError(f"field 'conduit': {value!r} is not one of {', '.join(CONDUITS)}")


def _mode(value: Any) -> Mode:
    text = value.strip().lower() if isinstance(value, str) else value
    if value is None or text == "a64":
        return "a64"
    if text == "a32":
        return "a32"
    if text == "t32":
        return "t32"
    raise _RecordError(f"field 'mode': {value!r} is not one of {', '.join(MODES)}")


def _record(fields: dict[str, Any], number: int, source: str) -> TraceEvent:
    """Build an event from JSON Lines/CSV fields (missing or empty means the default)."""

    def get(name: str) -> Any:
        value = fields.get(name)
        return None if value == "" else value

    if get("x0") is None:
        raise _RecordError("field 'x0' is missing")
    x0 = _register("x0", get("x0"))
    conduit = _conduit(get("conduit"))
    imm = 0 if get("imm") is None else _register("imm", get("imm"), bits=16)
    mode = _mode(get("mode"))
    vcpu = None if get("vcpu") is None else _register("vcpu", get("vcpu"), bits=32)
    ts_value = get("ts")
    ts = None if ts_value is None else _timestamp(ts_value)
    regs = [None if get(r) is None else _register(r, get(r)) for r in ("x1", "x2", "x3")]
    return TraceEvent(x0, conduit, imm, mode, vcpu, ts, number, source, *regs)


def _text_lines(source: Source, progress: Progress | None) -> Iterator[tuple[int, str]]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")("replace")
    number = 0
    for chunk in chunks(source, progress):
        for raw in decoder.decode(chunk).split("\n")[:-1]:
            number += 1
            yield number, raw


def _timestamp(value: Any) -> float:
    """A ``ts`` field as seconds: a finite number, or its plain ASCII decimal text.

    float() alone took true (1.0), "1_0", Arabic-Indic digits and "nan" or
    "inf", which the JSON Lines report then wrote as NaN or Infinity: no JSON.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _RecordError(f"field 'ts': {value!r} is not a number")
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()) is None:
        raise _RecordError(f"field 'ts': {value!r} is not a number")
    try:
        seconds = float(value)
    except (ValueError, OverflowError):  # OverflowError: an int past a float
        raise _RecordError(f"field 'ts': {value!r} is not a number") from None
    if not math.isfinite(seconds):
        raise _RecordError(f"field 'ts': {value!r} is not a finite number")
    return seconds


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def jsonl_events(
    source: Source, tally: TraceTally, progress: Progress | None
) -> Iterator[TraceEvent]:
    for number, text in _text_lines(source, progress):
        tally.lines += 1
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            tally.comments += 1
            continue
        try:
            fields = json.loads(stripped)
        except json.JSONDecodeError as exc:
            tally.bad(source.name, number, text, f"invalid JSON at column {exc.colno}: {exc.msg}")
            continue
        except ValueError:  # int() refuses a number of over 4,300 digits
            tally.bad(source.name, number, text, "invalid JSON: a number of over 4,300 digits")
            continue
        except RecursionError:
            tally.bad(
                source.name, number, text, "invalid JSON: arrays or objects nested too deeply"
            )
            continue
        if not isinstance(fields, dict):
            tally.bad(source.name, number, text, "a JSON object is expected")
            continue
        try:
            event = _record(fields, number, source.name)
        except _RecordError as exc:
            tally.bad(source.name, number, text, str(exc))
            continue
        tally.events += 1
        tally.calls[event.key] += 1
        yield event


def csv_events(
    source: Source, tally: TraceTally, progress: Progress | None
) -> Iterator[TraceEvent]:
    lines = _text_lines(source, progress)
    header: list[str] | None = None
    for number, text in lines:
        tally.lines += 1
        if not text.strip() or text.lstrip().startswith("#"):
            tally.comments += 1
            continue
        try:
            row = next(csv.reader([text]))
        except csv.Error as exc:  # a field past csv's size limit, for one
            tally.bad(source.name, number, text, f"unreadable CSV row: {exc}")
            continue
        cells = [c.strip() for c in row]
        if header is None:
            header = [c.lower() for c in cells]
            tally.comments += 1
            if "x0" not in header:
                raise TraceError(f"{source.name}:{number}: CSV header has no 'x0' column")
            continue
        if len(cells) != len(header):
            tally.bad(
                source.name, number, text, f"{len(cells)} cells, but the header has {len(header)}"
            )
            continue
        try:
            event = _record(dict(zip(header, cells, strict=True)), number, source.name)
        except _RecordError as exc:
            tally.bad(source.name, number, text, str(exc))
            continue
        tally.events += 1
        tally.calls[event.key] += 1
        yield event

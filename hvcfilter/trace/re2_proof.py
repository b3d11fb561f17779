"""A one-pass proof that a chunk is all ftrace event lines, run by RE2 as a DFA (``fast`` extra).

The ftrace fast path may count a chunk in bulk only when two things hold.
Every line must be an event line by ``ftrace._LINE``. And the two names it
counts, ``kvm_hvc_arm64`` and ``kvm_exit``, must stand nowhere but where a
line names its event: a message that quotes one is not a call. Without RE2,
the line-shape proof (``FtraceParser._event_lines``) shows both in a few
passes of CPython bytes work per chunk. With google-re2 installed, one
anchored match of the grammar built here shows both. RE2 runs that match as
a DFA, at about 500 MB/s on one core of the benchmark machine, where
CPython's backtracking ``re`` would walk every line.

The grammar is ``_LINE``'s, narrowed in three places:
- each free field (comm, event name, message) admits only strings that hold
  neither name;
- the flags column admits no ``k`` at all, which is simpler and just as safe;
- the event is ``kvm_hvc_arm64`` with a message ``_HVC_MSG`` accepts,
  ``kvm_exit`` with a free message, or any other name.

Narrowing only makes the proof decline more chunks, never accept a wrong one.
A declined chunk goes to the line parser. ``#`` comments, blank lines and
trace-cmd headers never match, so the caller deals with them first.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

__all__ = ["NAMES", "chunk_proof", "describe", "grammar"]

# The counted event names. Both start with "k", and neither holds another "k":
# _free() relies on that.
NAMES = (b"kvm_hvc_arm64", b"kvm_exit")
# RE2's \s leaves out \x0b, which Python's bytes \s has: write the classes out.
_SPACE = r" \t\n\r\x0b\x0c"
_DIGIT = "0-9"
_NOT_WORD = r"\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\xff"
# _LINE's head up to the event name, with the comm and the flags narrowed.
_HEAD = (
    r"[ \t]*{comm}-[0-9]+[ \t]+"
    r"(?:\([ \t]*[0-9\-]+\)[ \t]+)?"
    r"\[[0-9]+\][ \t]+"
    r"(?:[^{space}{digit}k][^{space}k]*[ \t]+)?"
    r"[0-9]+(?:\.[0-9]+)?:[ \t]+"
)
# ftrace._HVC_MSG, as a line's whole message.
_HVC_MESSAGE = (
    r"[ \t]+HVC at 0x[0-9a-fA-F]{1,16} \(r0: 0x[0-9a-fA-F]{1,16}, "
    r"imm: 0x[0-9a-fA-F]{1,4}\)[ \t\r]*"
)


def _free(excluded: str, *, nonempty: bool = False) -> str:
    """Strings of bytes outside ``excluded`` (a class body) that hold neither of the NAMES.

    After a run of "k"s, the text goes some way down the names' common trie (a
    proper prefix of a tail) and then leaves it. It leaves either by another
    "k", which starts the next run, or by a byte the trie does not continue
    with. A string may also end part-way down the trie.
    """
    tails = [name[1:].decode() for name in NAMES]
    prefixes = sorted({tail[:i] for tail in tails for i in range(len(tail))})
    leave = []
    for prefix in prefixes:
        follow = "".join(sorted({t[len(prefix)] for t in tails if t.startswith(prefix)}))
        leave.append(f"{re.escape(prefix)}[^k{re.escape(follow)}{excluded}]")
    partial = "|".join(re.escape(prefix) for prefix in prefixes)
    runs = f"k+(?:(?:{partial})k+)*"
    block = f"(?:[^k{excluded}]|{runs}(?:{'|'.join(leave)}))"
    tail = f"{runs}(?:{partial})"
    if nonempty:
        return f"(?:{block}+(?:{tail})?|{tail})"
    return f"{block}*(?:{tail})?"


def grammar() -> bytes:
    """The RE2 pattern (Latin-1) of a chunk made only of such event lines."""
    head = _HEAD.format(comm=_free(r"\n\["), space=_SPACE, digit=_DIGIT)
    message = _free(r"\n")
    event = (
        f"(?:kvm_hvc_arm64:{_HVC_MESSAGE}"
        f"|kvm_exit:{message}"
        f"|{_free(_NOT_WORD, nonempty=True)}:{message})"
    )
    return f"(?:{head}{event}\\n)*".encode("latin-1")


@functools.cache
def chunk_proof() -> Callable[[bytes, int], bool] | None:
    """``proof(chunk, start)``: whether ``chunk[start:]`` is all such lines; None without RE2."""
    try:
        import re2  # the optional "fast" extra
    except ImportError:
        return None
    try:
        options = re2.Options()
        options.encoding = re2.Options.Encoding.LATIN1  # one byte, one character
        options.log_errors = False  # a DFA out of memory falls back quietly, still exact
        pattern = re2.compile(grammar(), options)
    except (AttributeError, TypeError):  # a module named re2 that is not google-re2
        return None

    def proof(chunk: bytes, start: int) -> bool:
        return pattern.fullmatch(chunk, start) is not None

    return proof


def describe() -> str:
    """Which proof large chunks get, for ``hvcfilter --version`` and bug reports."""
    if chunk_proof() is None:
        return "pure Python (pip install 'hvcfilter[fast]' for the RE2 proof)"
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"RE2 (google-re2 {version('google-re2')})"
    except PackageNotFoundError:  # an re2 module from elsewhere
        return "RE2"

"""Starter specs for ``hvcfilter init``: what VMMs really do with the filter, as commented TOML.

The templates are package data (``hvcfilter/data/templates``); the shipped
examples of the same names are these texts with taplo's ``#:schema``
directive on top (a test keeps them equal). Each template's first comment
paragraph says what it is for; its first line is the one-line summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hvcfilter import __version__
from hvcfilter.errors import HvcFilterError
from hvcfilter.smccc import suggest

__all__ = ["DEFAULT_TEMPLATE", "Template", "UnknownTemplateError", "get_template", "templates"]

_DIR = Path(__file__).resolve().parent.parent / "data" / "templates"
DEFAULT_TEMPLATE = "lockdown"
# The order `init --list` shows: the common jobs first.
_ORDER = ("lockdown", "vcpu-hotplug", "trng-in-vmm", "sip-in-vmm", "minimal")


class UnknownTemplateError(HvcFilterError):
    """``init --template`` names no template."""


@dataclass(frozen=True, slots=True)
class Template:
    """One starter spec."""

    name: str
    summary: str
    text: str

    def render(self) -> str:
        """The file ``init`` writes: a provenance line, the editor-schema hint, the template."""
        return (
            f"# Made by `hvcfilter init --template {self.name}` (hvcfilter {__version__}).\n"
            "# Editor completion: `hvcfilter schema -o hvcfilter.schema.json`, then put\n"
            "# `#:schema ./hvcfilter.schema.json` on the first line of this file.\n"
            "#\n" + self.text
        )


def _summary(text: str) -> str:
    first = text.split("\n\n", 1)[0]
    words = " ".join(line.lstrip("# ").strip() for line in first.splitlines())
    return words.split(": ", 1)[0] if ": " in words[:80] else words.split(". ", 1)[0]


def templates() -> tuple[Template, ...]:
    """Every template, in the order ``init --list`` shows them."""
    out = []
    for name in _ORDER:
        text = (_DIR / f"{name}.toml").read_text("utf-8")
        out.append(Template(name, _summary(text), text))
    return tuple(out)


def get_template(name: str) -> Template:
    """The template called ``name``.

    Raises:
        UnknownTemplateError: no such template (the message lists them and suggests one).
    """
    for template in templates():
        if template.name == name:
            return template
    close = suggest(name, _ORDER)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise UnknownTemplateError(
        f"unknown template {name!r}; {hint}templates: {', '.join(_ORDER)} "
        "(see `hvcfilter init --list`)"
    )

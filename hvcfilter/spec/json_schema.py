"""The spec format as a JSON Schema (draft 2020-12), for editors: generated and shipped.

:func:`generate` builds it from the pydantic models of :mod:`.schema`, the
one source of truth, with TOML's view of them (TOML has no null, so an
optional key is simply absent) and the descriptions, examples and name
suggestions of :mod:`.schema_docs`. The result is committed twice, as
package data (``hvcfilter/data/hvcfilter.schema.json``, which
:func:`shipped` reads, so that ``hvcfilter schema`` does not pay for
pydantic) and as ``schema/hvcfilter.schema.json`` for editors pointed at
the repository; tests keep both equal to :func:`generate`. Regenerate them
with ``python -m hvcfilter.spec.json_schema``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["generate", "render", "shipped"]

_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_PACKAGE_PATH = "data/hvcfilter.schema.json"


def generate() -> dict[str, Any]:
    """The JSON Schema of a spec document, generated from :mod:`.schema`'s models."""
    from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
    from pydantic_core import core_schema

    from hvcfilter.spec.schema import SpecDocumentModel

    class _TomlSchema(GenerateJsonSchema):
        # TOML has no null: an optional key is absent, never null.
        def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
            return self.generate_inner(schema["schema"])

    schema = SpecDocumentModel.model_json_schema(schema_generator=_TomlSchema)
    _tidy(schema)
    return {
        "$schema": _DIALECT,
        **schema,
        "title": "hvcfilter spec",
        "description": (
            "A KVM/arm64 SMCCC filter table for hvcfilter (check, compile, simulate). "
            "`hvcfilter explain CODE` documents each finding."
        ),
    }


def _tidy(node: Any, *, names: bool = False) -> None:
    """Drop what only pydantic needs: class-name titles and empty defaults.

    ``names`` marks a mapping of key names to schemas (``properties``,
    ``$defs``), where ``title`` or ``default`` would be a spec key, not a keyword.
    """
    if isinstance(node, list):
        for item in node:
            _tidy(item)
        return
    if not isinstance(node, dict):
        return
    if not names:
        node.pop("title", None)
        if "default" in node and not _meaningful(node["default"]):
            del node["default"]
    for key, value in node.items():
        _tidy(value, names=not names and key in ("properties", "$defs"))


def _meaningful(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_meaningful(v) for v in value.values())
    return value not in (None, [], {})


def render(schema: dict[str, Any]) -> str:
    """The committed text of a schema: two-space indented, with one final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def shipped() -> str:
    """The schema text shipped in the package (what ``hvcfilter schema`` prints)."""
    # Imported here: importlib.resources costs start-up that only this command pays.
    from importlib import resources

    return resources.files("hvcfilter").joinpath(_PACKAGE_PATH).read_text("utf-8")


if __name__ == "__main__":  # pragma: no cover - the regeneration step of a developer
    import pathlib

    text = render(generate())
    root = pathlib.Path(__file__).resolve().parents[2]
    for target in (root / "hvcfilter" / _PACKAGE_PATH, root / "schema" / "hvcfilter.schema.json"):
        target.parent.mkdir(exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")

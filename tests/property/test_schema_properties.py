"""The fast spec reader (spec.reader) against the schema of record (spec.schema).

The reader may decline anything, but what it returns must be exactly what the
pydantic schema returns, and it must not decline well-formed documents (or
every clean spec would pay for importing pydantic).
"""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hvcfilter.model import SpecDocument
from hvcfilter.spec import schema
from hvcfilter.spec.reader import read_document

pytestmark = pytest.mark.property

U32 = 0xFFFF_FFFF

# Values that are right for some key and wrong for others, edge cases included.
anything = st.one_of(
    st.integers(-1, U32 + 1),
    st.sampled_from([0, 63, 64, U32, True, False, 1.5, "", "deny", "psci", "sip", "6.12", "9.9"]),
    st.sampled_from(["PSCI_CPU_ON_64", "0x84000003", "smc32", "fast", "HVF303", "not a rule!"]),
    st.lists(st.sampled_from(["trng", "ptp", 3, "HVF201"]), max_size=3),
    st.dictionaries(st.sampled_from(["x", "base"]), st.integers(0, 3), max_size=2),
)
u32 = st.integers(0, U32)
action = st.sampled_from(["handle", "deny", "fwd_to_user"])
conv = st.none() | st.sampled_from(["smc32", "smc64"])
allow = st.none() | st.lists(st.sampled_from(["HVF303", "twin-gap", "HVF201"]), max_size=2)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


valid_entry = st.one_of(
    st.fixed_dictionaries({"action": action, "base": u32, "nr_functions": u32}),
    st.fixed_dictionaries(
        {"action": action, "base": u32, "end": u32, "comment": st.none() | st.text(max_size=5),
         "allow": allow}
    ).map(_drop_none),
    st.fixed_dictionaries(
        {"action": action, "function": u32 | st.sampled_from(["PSCI_CPU_ON_64", "nope"])}
    ),
    st.fixed_dictionaries(
        {"action": action, "functions": st.lists(u32 | st.just("TRNG_VERSION"), min_size=1,
                                                  max_size=3)}
    ),
    st.fixed_dictionaries(
        {"action": action, "service": st.sampled_from(["psci", "trng", "pv-time"]),
         "convention": conv}
    ).map(_drop_none),
    st.fixed_dictionaries(
        {"action": action, "owner": st.integers(0, 63) | st.sampled_from(["sip", "trusted-os"]),
         "convention": conv, "call": st.none() | st.sampled_from(["fast", "yield"])}
    ).map(_drop_none),
)  # fmt: skip

valid_document = st.fixed_dictionaries(
    {},
    optional={
        "filter": st.fixed_dictionaries(
            {},
            optional={
                "name": st.text(max_size=5),
                "kernel": st.sampled_from(["6.12", "7.2"]),
                "layout": st.sampled_from(["merged", "sorted", "as-written"]),
                "allow": st.lists(st.sampled_from(["HVF303", "mergeable-ranges"]), max_size=2),
            },
        ),
        "vm": st.fixed_dictionaries(
            {},
            optional={
                "psci_version": st.sampled_from(["1.0", "1.1", "1.3"]),
                "std": st.lists(st.sampled_from(["trng", "nope"]), max_size=2),
            },
        ),
        "range": st.lists(valid_entry, max_size=4),
    },
)


@st.composite
def mutated_document(draw: st.DrawFn) -> dict[str, Any]:
    """A valid document with one value replaced or one key added."""
    doc: dict[str, Any] = draw(valid_document)
    tables: list[dict[str, Any]] = [doc, *cast(list[dict[str, Any]], doc.get("range", []))]
    for name in ("filter", "vm"):
        if isinstance(doc.get(name), dict):
            tables.append(doc[name])
    target = draw(st.sampled_from(tables))
    keys = [*target, "extra", "nr_function", "base", "function", "range"]
    target[draw(st.sampled_from(keys))] = draw(anything)
    return doc


def _schema(raw: dict[str, Any]) -> SpecDocument | None:
    try:
        return schema.to_document(schema.SpecDocumentModel.model_validate(raw))
    except ValidationError:
        return None


@settings(max_examples=400)
@given(valid_document)
def test_well_formed_documents_take_the_fast_path(raw: dict[str, Any]) -> None:
    fast = read_document(raw)
    assert fast is not None
    assert fast == _schema(raw)


@settings(max_examples=800)
@given(mutated_document())
def test_the_fast_reader_never_disagrees_with_the_schema(raw: dict[str, Any]) -> None:
    fast = read_document(raw)
    if fast is not None:
        assert fast == _schema(raw)


def _editor_schema() -> Any:
    from jsonschema import Draft202012Validator

    from hvcfilter.spec import json_schema

    return Draft202012Validator(json.loads(json_schema.shipped()))


EDITOR_SCHEMA = _editor_schema()


@settings(max_examples=800)
@given(valid_document | mutated_document())
def test_the_editor_schema_never_rejects_what_the_schema_of_record_accepts(
    raw: dict[str, Any],
) -> None:
    # The JSON Schema may be looser (names are only suggested) but never stricter.
    if _schema(raw) is not None:
        assert EDITOR_SCHEMA.is_valid(raw)

"""What a filter or a search matches in a stored log: AND across filters, OR across values, eq,
neq, contains, numeric comparisons, nulls, metadata keys and values, search."""

from __future__ import annotations

from airflow_provider_aigw.emulator import EmulatorServer
from tests.unit.emulator.logs_api import Api, meta, truth


def test_filters_and_or_neq(emu: EmulatorServer, api: Api) -> None:
    f_and = [
        {"key": "provider", "operator": "eq", "value": ["openai"]},
        {"key": "success", "operator": "eq", "value": [True]},
    ]
    assert api.all_ids(f_and) == truth(emu, lambda x: x["provider"] == "openai" and x["success"] is True)
    f_or = [{"key": "provider", "operator": "eq", "value": ["groq", "mistral"]}]
    expected = truth(emu, lambda x: x["provider"] in ("groq", "mistral"))
    assert api.all_ids(f_or) == expected and expected
    f_neq = [{"key": "provider", "operator": "neq", "value": ["openai", "anthropic"]}]
    expected = truth(emu, lambda x: x["provider"] not in ("openai", "anthropic"))
    assert api.all_ids(f_neq) == expected and expected
    f_contains = [{"key": "model", "operator": "contains", "value": ["LLAMA"]}]
    expected = truth(emu, lambda x: "llama" in x["model"])
    assert api.all_ids(f_contains) == expected and expected


def test_numeric_and_null_filters(emu: EmulatorServer, api: Api) -> None:
    f = [{"key": "tokens_in", "operator": "gt", "value": [1000]}, {"key": "cost", "operator": "lt", "value": [0.01]}]
    expected = truth(emu, lambda x: (x["tokens_in"] or 0) > 1000 and x.get("cost") is not None and x["cost"] < 0.01)
    assert api.all_ids(f) == expected and expected
    f = [{"key": "tokens_in", "operator": "eq", "value": [None]}]
    expected = truth(emu, lambda x: x["tokens_in"] is None)
    assert api.all_ids(f) == expected and expected
    f = [{"key": "cached", "operator": "eq", "value": [True]}]
    expected = truth(emu, lambda x: x["cached"] is True)
    assert api.all_ids(f) == expected and expected


def test_metadata_filters_and_search(emu: EmulatorServer, api: Api) -> None:
    f = [{"key": "metadata.key", "operator": "eq", "value": ["team"]}]
    expected = truth(emu, lambda x: "team" in meta(x))
    assert api.all_ids(f) == expected and expected
    f = [{"key": "metadata.value", "operator": "eq", "value": ["prod"]}]
    expected = truth(emu, lambda x: "prod" in meta(x).values())
    assert api.all_ids(f) == expected and expected
    expected = truth(emu, lambda x: "staging" in (x.get("metadata") or ""))
    assert api.all_ids(search="staging") == expected and expected

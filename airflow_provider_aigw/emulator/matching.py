"""What a filter or a search matches in a stored log, and the sort order of field values."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_aigw.emulator.query import Filter


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _boolish(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return None


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _eq(v: Any, x: Any) -> bool:
    if v is None or x is None:
        return v is None and x is None
    if isinstance(v, bool) or isinstance(x, bool):
        bv, bx = _boolish(v), _boolish(x)
        return bv is not None and bv == bx
    if isinstance(v, (int, float)) or isinstance(x, (int, float)):
        nv, nx = _num(v), _num(x)
        return nv is not None and nv == nx
    return str(v) == str(x)


def _cmp(v: Any, x: Any, op: str) -> bool:
    if v is None or x is None or isinstance(v, bool) or isinstance(x, bool):
        return False
    nv, nx = _num(v), _num(x)
    a: Any
    b: Any
    if nv is not None and nx is not None:
        a, b = nv, nx
    elif isinstance(v, str) and isinstance(x, str):
        a, b = v, x
    else:
        return False
    if op == "lt":
        return bool(a < b)
    if op == "gt":
        return bool(a > b)
    if op == "gte":
        return bool(a >= b)
    return bool(a <= b)


def _match_values(candidates: Iterable[Any], op: str, values: list[Any]) -> bool:
    """Whether any candidate satisfies the filter (``neq``: no candidate equals any value)."""
    cands = list(candidates)
    if op == "neq":
        return not any(_eq(c, x) for c in cands for x in values)
    if op == "eq":
        return any(_eq(c, x) for c in cands for x in values)
    if op == "contains":
        return any(
            c is not None and _text(x).lower() in _text(c).lower() for c in cands for x in values if x is not None
        )
    return any(_cmp(c, x, op) for c in cands for x in values)


def _metadata(log: dict[str, Any]) -> dict[str, Any]:
    meta = log.get("metadata")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            return {}
    return meta if isinstance(meta, dict) else {}


def matches(log: dict[str, Any], created_ms: int, flt: Filter) -> bool:
    """Whether ``log`` satisfies one filter."""
    key = flt.key
    if key == "metadata.key":
        return _match_values(_metadata(log).keys(), flt.op, flt.values)
    if key == "metadata.value":
        return _match_values(_metadata(log).values(), flt.op, flt.values)
    value: Any
    if key == "created_at":
        value = log.get("created_at") if flt.op == "contains" else created_ms
    elif key == "tokens":
        tin, tout = log.get("tokens_in"), log.get("tokens_out")
        value = None if tin is None and tout is None else (tin or 0) + (tout or 0)
    elif key in ("prompts.prompt_id", "prompts.version_id"):
        prompts = log.get("prompts")
        value = prompts.get(key.split(".", 1)[1]) if isinstance(prompts, dict) else log.get(key)
    else:
        value = log.get(key)
    return _match_values((value,), flt.op, flt.values)


def search_match(log: dict[str, Any], needle: str) -> bool:
    raw = log.get("metadata")
    if raw is None:
        return False
    text = raw if isinstance(raw, str) else json.dumps(raw)
    return needle.lower() in text.lower()


def sort_value(v: Any) -> tuple[int, Any]:
    if v is None:
        return (0, 0)
    if isinstance(v, bool):
        return (1, int(v))
    if isinstance(v, (int, float)):
        return (2, v)
    return (3, str(v))

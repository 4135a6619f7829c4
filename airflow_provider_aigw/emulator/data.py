"""Deterministic, realistic AI Gateway log data for the emulator.

Generated logs are described by two integers: a 63-bit *generation seed* and the
``created_at`` timestamp in epoch milliseconds.  Every field of the log (id, provider,
model, tokens, cost, metadata, ...) and both stored bodies are derived from these two
numbers on demand, so a gateway holding 1,000,000 logs only stores two ints per log.
"""

from __future__ import annotations

import json
import random
import re
import time
import zlib
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "HEAD_LIMIT",
    "body_text",
    "format_ms",
    "gen_bodies",
    "gen_log",
    "generate_logs",
    "log_id_ms",
    "parse_ts_ms",
    "to_ms",
    "uuid7",
]

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MASK64 = (1 << 64) - 1

#: Number of characters of a body reported as ``request_head`` / ``response_head``.
HEAD_LIMIT = 1024

# --------------------------------------------------------------------------- time helpers

_TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_ts_ms(value: str) -> int:
    """Parse an ISO 8601 / RFC 3339 timestamp into epoch milliseconds (truncated).

    Accepts ``Z`` and numeric offsets, any number of fractional digits and date-only
    strings. Naive timestamps are taken as UTC. Raises :class:`ValueError` otherwise.
    """
    m = _TS_RE.match(value.strip())
    if not m:
        raise ValueError(f"invalid timestamp: {value!r}")
    year, month, day, hh, mm, ss, frac, tz = m.groups()
    dt = datetime(int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=UTC)
    ms = (dt - _EPOCH) // timedelta(milliseconds=1)
    if frac:
        ms += int((frac + "000")[:3])
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset_min = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) >= 4 else 0)
        ms -= sign * offset_min * 60_000
    return ms


def to_ms(value: datetime | str | int | float) -> int:
    """Convert a datetime (naive = UTC), ISO string or epoch seconds to epoch milliseconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - _EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, str):
        return parse_ts_ms(value)
    return int(value * 1000)


def format_ms(ms: int) -> str:
    """Format epoch milliseconds as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    sec, milli = divmod(ms, 1000)
    if 0 <= sec < 253402300800:  # year 1..9999 fast path
        return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(sec))}.{milli:03d}Z"
    dt = _EPOCH + timedelta(milliseconds=ms)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{milli:03d}Z"


# --------------------------------------------------------------------------- hashing / ids


def _mix(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-distributed 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def uuid7(ms: int, rand: int) -> str:
    """A lowercase UUIDv7 string with timestamp ``ms`` and random bits from ``rand`` (>= 74 bits)."""
    rand_a = rand & 0xFFF
    rand_b = (rand >> 12) & ((1 << 62) - 1)
    value = ((ms & ((1 << 48) - 1)) << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UUID7_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def log_id_ms(log_id: str) -> int | None:
    """The millisecond timestamp embedded in a UUIDv7 id, or None for other ids."""
    if not _UUID7_RE.match(log_id):
        return None
    return int(log_id[:8] + log_id[9:13], 16)


def id_seed(log_id: str) -> int:
    """A stable generation seed derived from an arbitrary log id (for explicit logs)."""
    return (zlib.crc32(log_id.encode()) << 31) ^ zlib.adler32(log_id.encode())


# --------------------------------------------------------------------------- catalogue

# (provider, model, model_type, path, usd per 1M input tokens, usd per 1M output tokens, weight)
_MODELS: list[tuple[str, str, str, str, float, float, int]] = [
    ("openai", "gpt-4o-mini", "chat", "chat/completions", 0.15, 0.60, 22),
    ("openai", "gpt-4o", "chat", "chat/completions", 2.50, 10.00, 12),
    ("openai", "gpt-4.1-mini", "chat", "chat/completions", 0.40, 1.60, 8),
    ("openai", "o3-mini", "chat", "chat/completions", 1.10, 4.40, 3),
    ("openai", "text-embedding-3-small", "embeddings", "embeddings", 0.02, 0.0, 8),
    ("anthropic", "claude-3-5-sonnet-20241022", "chat", "v1/messages", 3.00, 15.00, 9),
    ("anthropic", "claude-3-5-haiku-20241022", "chat", "v1/messages", 0.80, 4.00, 6),
    ("anthropic", "claude-sonnet-4-20250514", "chat", "v1/messages", 3.00, 15.00, 4),
    ("workers-ai", "@cf/meta/llama-3.1-8b-instruct", "chat", "@cf/meta/llama-3.1-8b-instruct", 0.28, 0.83, 9),
    ("workers-ai", "@cf/baai/bge-base-en-v1.5", "embeddings", "@cf/baai/bge-base-en-v1.5", 0.07, 0.0, 3),
    (
        "workers-ai",
        "@cf/mistral/mistral-7b-instruct-v0.1",
        "chat",
        "@cf/mistral/mistral-7b-instruct-v0.1",
        0.11,
        0.19,
        2,
    ),
    (
        "google-ai-studio",
        "gemini-2.0-flash",
        "chat",
        "v1beta/models/gemini-2.0-flash:generateContent",
        0.10,
        0.40,
        6,
    ),
    (
        "google-ai-studio",
        "gemini-1.5-pro",
        "chat",
        "v1beta/models/gemini-1.5-pro:generateContent",
        1.25,
        5.00,
        2,
    ),
    ("groq", "llama-3.3-70b-versatile", "chat", "openai/v1/chat/completions", 0.59, 0.79, 4),
    ("groq", "llama-3.1-8b-instant", "chat", "openai/v1/chat/completions", 0.05, 0.08, 2),
    ("mistral", "mistral-large-latest", "chat", "v1/chat/completions", 2.00, 6.00, 2),
]

# 256-entry weighted lookup table: a byte picks a model.
_MODEL_TABLE: list[int] = []
_total_weight = sum(m[6] for m in _MODELS)
for _i, _m in enumerate(_MODELS):
    _MODEL_TABLE.extend([_i] * round(_m[6] * 256 / _total_weight))
_MODEL_TABLE = (_MODEL_TABLE + [0] * 256)[:256]

_META_KEYS = ["user_id", "team", "env", "feature", "session_id", "tenant", "release"]
_META_VALUES: dict[str, list[Any]] = {
    "team": ["search", "support", "growth", "platform", "data"],
    "env": ["prod", "staging", "dev"],
    "feature": ["chat", "summarize", "classify", "rag", "translate", "autocomplete"],
    "tenant": ["acme", "globex", "initech", "umbrella", "hooli"],
    "release": [1, 2, 3, 42, True, False],
}

_PROMPTS = [
    "Summarise the following support ticket in two sentences.",
    "Translate 'where is the train station' into French.",
    "Write a haiku about distributed systems.",
    "Classify the sentiment of this review: 'The delivery was late but the food was great.'",
    "Explain the difference between a process and a thread.",
    "Give me three name ideas for a coffee shop on Mars.",
    "What is the capital of Australia?",
    "Extract the invoice number from: 'Invoice INV-2041 due 2026-12-01'.",
    "Draft a polite reply declining a meeting invitation.",
    "List the primes below 30.",
]
_ANSWERS = [
    "The customer cannot log in after the password reset. They ask for the account to be unlocked.",
    "Où est la gare ?",
    "Packets drift like leaves / consensus forms in silence / the leader returns",
    "Mixed: negative about delivery, positive about the food.",
    "A process has its own address space; threads share the address space of their process.",
    "Red Bean Roasters, Olympus Espresso, The Dusty Mug.",
    "Canberra.",
    "INV-2041",
    "Thank you for the invitation; unfortunately I am unable to attend.",
    "2, 3, 5, 7, 11, 13, 17, 19, 23, 29",
]
_ERRORS = [
    (429, "rate_limit_exceeded", "Rate limit reached for requests"),
    (400, "invalid_request_error", "This model's maximum context length is 128000 tokens."),
    (500, "server_error", "The server had an error while processing your request."),
    (401, "invalid_api_key", "Incorrect API key provided."),
]

# --------------------------------------------------------------------------- log generation


def gen_log(gseed: int, created_ms: int) -> dict[str, Any]:
    """Build the log item (list fields) determined by a generation seed and a timestamp."""
    h1 = _mix(gseed)
    h2 = _mix(h1 ^ 0x5DEECE66D)
    h3 = _mix(h2 ^ 0x2545F4914F6CDD1D)
    provider, model, model_type, path, p_in, p_out, _w = _MODELS[_MODEL_TABLE[h1 & 0xFF]]
    success = ((h1 >> 8) & 0xFF) >= 13  # ~95 %
    cached = success and ((h1 >> 16) & 0xFF) < 20  # ~8 %
    stream = model_type == "chat" and ((h1 >> 24) & 0xFF) < 51  # ~20 % of chats
    if model_type == "embeddings":
        tokens_in: int | None = 4 + (h2 & 0x3FF) % 600
        tokens_out: int | None = 0
        duration = 40 + (h2 >> 10) % 260
    else:
        tokens_in = 12 + (h2 & 0xFFF) % 3500
        tokens_out = 1 + ((h2 >> 12) & 0xFFF) % 1200 if success else 0
        duration = 250 + (h2 >> 24) % 9000
    if cached:
        duration = 3 + duration % 40
    if ((h1 >> 32) & 0xFF) < 8:  # ~3 %: provider did not report usage
        tokens_in = None
        tokens_out = None
    status_code = 200
    log: dict[str, Any] = {
        "id": uuid7(created_ms, h3),
        "created_at": format_ms(created_ms),
        "provider": provider,
        "model": model,
        "model_type": model_type,
        "path": path,
        "duration": duration,
        "success": success,
        "cached": cached,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
    }
    if ((h1 >> 40) & 0xFF) >= 13:  # ~95 % carry a cost estimate
        cost = 0.0 if cached else round(((tokens_in or 0) * p_in + (tokens_out or 0) * p_out) / 1000000, 8)
        log["cost"] = cost
    log["custom_cost"] = ((h1 >> 48) & 0xFF) < 3
    n_meta = (h3 >> 8) % 9  # 0..8; > 5 means none (about 1/3 without metadata)
    if 0 < n_meta <= 5:
        meta: dict[str, Any] = {}
        for j in range(n_meta):
            key = _META_KEYS[(h3 >> (12 + 3 * j)) % len(_META_KEYS)]
            sel = (h2 >> (5 * j)) & 0xFFFF
            if key == "user_id":
                meta[key] = f"user-{sel % 500:04d}"
            elif key == "session_id":
                meta[key] = f"sess-{sel:04x}"
            else:
                pool = _META_VALUES[key]
                meta[key] = pool[sel % len(pool)]
        log["metadata"] = json.dumps(meta, separators=(",", ":"))
    log["request_content_type"] = "application/json"
    log["response_content_type"] = "text/event-stream" if stream else "application/json"
    log["request_type"] = "universal" if ((h1 >> 56) & 0x3) == 0 else "provider"
    if not success:
        status_code = _ERRORS[(h3 >> 40) % len(_ERRORS)][0]
    log["status_code"] = status_code
    log["step"] = 0
    if ((h3 >> 50) & 0xF) < 5:
        log["event_id"] = uuid7(created_ms, _mix(h3))
    return log


def body_collected(gseed: int) -> bool:
    """Whether bodies were stored for a generated log (~90 %; else ``cf-aig-collect-log-payload: false``)."""
    return ((_mix(gseed) >> 56) & 0xFF) >= 26


def gen_bodies(log: dict[str, Any], gseed: int) -> tuple[Any, Any]:
    """Realistic request and response bodies for ``log``.

    Returns ``(request, response)``: JSON values, or a ``str`` for a streamed response.
    """
    rng = random.Random(gseed)
    model = str(log.get("model", "gpt-4o-mini"))
    provider = str(log.get("provider", "openai"))
    model_type = str(log.get("model_type", "chat"))
    stream = log.get("response_content_type") == "text/event-stream"
    tin = log.get("tokens_in") or 0
    tout = log.get("tokens_out") or 0
    idx = rng.randrange(len(_PROMPTS))
    prompt, answer = _PROMPTS[idx], _ANSWERS[idx]
    created = to_ms(str(log.get("created_at", "1970-01-01T00:00:00Z"))) // 1000
    request: Any
    response: Any
    if model_type == "embeddings":
        request = {"model": model, "input": prompt}
        response = {
            "object": "list",
            "data": [
                {
                    "object": "embedding",
                    "index": 0,
                    "embedding": [round(rng.uniform(-1, 1), 6) for _ in range(8)],
                }
            ],
            "model": model,
            "usage": {"prompt_tokens": tin, "total_tokens": tin},
        }
    elif provider == "anthropic":
        request = {
            "model": model,
            "max_tokens": 1024,
            "system": "You are a helpful assistant.",
            "messages": [{"role": "user", "content": prompt}],
            "stream": stream,
        }
        response = {
            "id": f"msg_{rng.getrandbits(96):024x}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": answer}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": tin, "output_tokens": tout},
        }
    else:
        request = {
            "model": model,
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": prompt},
            ],
            "temperature": round(rng.choice([0.0, 0.2, 0.7, 1.0]), 1),
            "stream": stream,
        }
        response = {
            "id": f"chatcmpl-{rng.getrandbits(96):024x}",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout},
        }
    if not log.get("success", True):
        status = int(log.get("status_code") or 500)
        err = next((e for e in _ERRORS if e[0] == status), _ERRORS[2])
        response = {"error": {"message": err[2], "type": err[1], "param": None, "code": err[1]}}
    elif stream:
        response = _sse(response, model, created, answer)
    return request, response


def _sse(response: dict[str, Any], model: str, created: int, answer: str) -> str:
    """Render a chat answer as an OpenAI-style server-sent event stream."""
    cid = str(response.get("id", "chatcmpl-0"))
    words = answer.split(" ")
    events = []
    for i, word in enumerate(words):
        chunk = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": word if i == 0 else " " + word},
                    "finish_reason": None,
                }
            ],
        }
        events.append("data: " + json.dumps(chunk, separators=(",", ":")) + "\n\n")
    final = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    events.append("data: " + json.dumps(final, separators=(",", ":")) + "\n\n")
    events.append("data: [DONE]\n\n")
    return "".join(events)


def body_text(body: Any) -> str:
    """The wire text of a stored body (JSON values are serialised, strings kept as is)."""
    if isinstance(body, str):
        return body
    return json.dumps(body, separators=(",", ":"))


def seeds_and_times(count: int, start_ms: int, end_ms: int, seed: int) -> list[tuple[int, int]]:
    """``count`` (created_ms, gseed) pairs spread over ``[start_ms, end_ms)``, sorted by time.

    About 2 % of logs deliberately share the millisecond of their predecessor (bursts).
    """
    if end_ms <= start_ms:
        raise ValueError("end must be after start")
    rng = random.Random(seed)
    span = end_ms - start_ms
    rnd = rng.random
    times = sorted(start_ms + int(rnd() * span) for _ in range(count))
    for i in range(1, count):
        if rnd() < 0.02:
            times[i] = times[i - 1]
    bits = rng.getrandbits
    return [(t, bits(63)) for t in times]


def generate_logs(
    count: int,
    start: datetime | str,
    end: datetime | str,
    *,
    seed: int = 0,
    gateway_id: str = "my-gateway",
) -> list[dict[str, Any]]:
    """Generate ``count`` realistic log items with ``created_at`` spread over ``[start, end)``.

    Deterministic for a given ``(seed, gateway_id)``; sorted by ``created_at`` ascending.
    The returned dicts can be passed to ``EmulatorServer.add_logs``.
    """
    base = seed ^ zlib.crc32(gateway_id.encode())
    return [gen_log(g, t) for t, g in seeds_and_times(count, to_ms(start), to_ms(end), base)]

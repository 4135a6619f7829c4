"""The emulator's Logpush side: the logs it holds, written as Cloudflare Logpush writes the
``ai_gateway_events`` dataset.

Layout and format (``../shared/reference/cloudflare-logpush-ai-gateway.md``; the object names
are the general Logpush naming, unverified for this dataset)::

    DESTINATION/YYYYMMDD/YYYYMMDDTHHMMSSZ_YYYYMMDDTHHMMSSZ_<hash>.log.gz

One object per batch of ``batch_seconds`` (batches aligned on the epoch; the name holds the
batch's start and end, the folder its start day), gzip NDJSON, one log per line with the
dataset's fields. ``Metadata``, ``RequestBody`` and ``ResponseBody`` are each sealed in an
envelope ``{"type": "encrypted", "key", "iv", "data"}``: a fresh AES-256-GCM key encrypts the
field, RSA-OAEP-SHA256 under the given public key wraps that key. With ``shared_key`` one AES key
(one wrapped key) serves the three fields of a log, each with its own IV: Cloudflare's docs do
not say which of the two it does.

Needs ``cryptography`` (and ``fsspec`` for URLs other than local paths), both installed with
Airflow; imported when files are written, so the rest of the emulator stays standard library.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import time
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_aigw.emulator import data

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from datetime import datetime

__all__ = [
    "DEFAULT_BATCH_SECONDS",
    "ENCRYPTED_FIELDS",
    "TIMESTAMP_FORMATS",
    "LogSource",
    "LogpushEncryptor",
    "format_timestamp",
    "logpush_record",
    "write_logpush_files",
    "write_records",
]

#: The ``timestamp_format`` output options of a Logpush job (``unixnano`` is Cloudflare's default).
TIMESTAMP_FORMATS: tuple[str, ...] = ("unixnano", "unix", "rfc3339")
#: The fields Cloudflare encrypts under the gateway's public key.
ENCRYPTED_FIELDS: tuple[str, ...] = ("Metadata", "RequestBody", "ResponseBody")
DEFAULT_BATCH_SECONDS = 30
_AES_KEY_BYTES = 32
_IV_BYTES = 12


class LogSource(Protocol):
    """What the writer reads: :class:`~airflow_provider_aigw.emulator.server.EmulatorServer` (its
    ground truth), named here by its one method so that the server may import this module."""

    def iter_logs_with_bodies(
        self, gateway_id: str, start: datetime | str | None = None, end: datetime | str | None = None
    ) -> Iterator[tuple[dict[str, Any], Any, Any]]: ...


def format_timestamp(created_ms: int, timestamp_format: str) -> int | str:
    """``Timestamp`` of a log created at ``created_ms`` as a job set to ``timestamp_format`` writes it.

    ``unixnano``: integer nanoseconds; ``unix``: integer seconds; ``rfc3339``: ``2026-04-18T00:02:10Z``
    (whole seconds). The last two drop the milliseconds.
    """
    if timestamp_format == "unixnano":
        return created_ms * 1_000_000
    if timestamp_format == "unix":
        return created_ms // 1000
    if timestamp_format == "rfc3339":
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created_ms // 1000))
    raise ValueError(f"timestamp_format must be one of {', '.join(TIMESTAMP_FORMATS)}, got {timestamp_format!r}")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class LogpushEncryptor:
    """Seals fields as Cloudflare does: AES-256-GCM data, the AES key wrapped by RSA-OAEP-SHA256.

    :param public_key_pem: the gateway's RSA public key (SPKI PEM, as uploaded to Cloudflare).
    :param shared_key: one AES key for the fields of a log (``seal_log``) instead of one per field.
    """

    def __init__(self, public_key_pem: str | bytes, *, shared_key: bool = False) -> None:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        pem = public_key_pem.encode("ascii") if isinstance(public_key_pem, str) else public_key_pem
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"the Logpush public key must be an RSA key, got {type(key).__name__}")
        self._public_key = key
        self._oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        self._aesgcm = AESGCM
        self.shared_key = shared_key

    def _wrap(self, aes_key: bytes) -> str:
        return _b64(self._public_key.encrypt(aes_key, self._oaep))

    def _seal(self, plaintext: bytes, aes_key: bytes, wrapped: str) -> dict[str, str]:
        iv = os.urandom(_IV_BYTES)
        sealed = self._aesgcm(aes_key).encrypt(iv, plaintext, None)  # ciphertext followed by the 16-byte tag
        return {"type": "encrypted", "key": wrapped, "iv": _b64(iv), "data": _b64(sealed)}

    def seal(self, plaintext: bytes) -> dict[str, str]:
        """One field's envelope under a fresh AES key."""
        aes_key = os.urandom(_AES_KEY_BYTES)
        return self._seal(plaintext, aes_key, self._wrap(aes_key))

    def seal_log(self, plaintexts: list[bytes | None]) -> list[dict[str, str] | None]:
        """The envelopes of a log's fields (``None`` stays ``None``): one AES key each, or one in
        all when ``shared_key``."""
        if not self.shared_key:
            return [None if p is None else self.seal(p) for p in plaintexts]
        aes_key = os.urandom(_AES_KEY_BYTES)
        wrapped = self._wrap(aes_key)
        return [None if p is None else self._seal(p, aes_key, wrapped) for p in plaintexts]


def logpush_record(
    log: dict[str, Any],
    request_body: Any,
    response_body: Any,
    *,
    gateway_id: str,
    encryptor: LogpushEncryptor,
    timestamp_format: str = "unixnano",
) -> dict[str, Any]:
    """One log of the emulator (list fields and stored bodies) as a line of ``ai_gateway_events``.

    Fields the API has no counterpart for take the values of a request without routing:
    ``RequestedModel`` the model, ``RateLimited`` false, ``RoutingDecisionID`` and
    ``RoutingReason`` empty. ``Metadata`` is the log's metadata JSON text, a body its wire text
    (:func:`data.body_text`); each is null when the log has none. ``Metrics`` carries ``cost`` and
    ``durationMs`` when the log has them (token counts are not documented for the dataset).
    """
    metadata = log.get("metadata")
    plaintexts = [
        None if metadata is None else str(metadata).encode("utf-8"),
        None if request_body is None else data.body_text(request_body).encode("utf-8"),
        None if response_body is None else data.body_text(response_body).encode("utf-8"),
    ]
    meta_env, request_env, response_env = encryptor.seal_log(plaintexts)
    metrics: dict[str, Any] = {}
    if log.get("cost") is not None:
        metrics["cost"] = log["cost"]
    if log.get("duration") is not None:
        metrics["durationMs"] = log["duration"]
    return {
        "Cached": bool(log.get("cached", False)),
        "Endpoint": log.get("path"),
        "Gateway": gateway_id,
        "Metadata": meta_env,
        "Metrics": metrics,
        "Model": log.get("model"),
        "Provider": log.get("provider"),
        "RateLimited": False,
        "RequestBody": request_env,
        "RequestedModel": log.get("model"),
        "ResponseBody": response_env,
        "RoutingDecisionID": "",
        "RoutingReason": "",
        "StatusCode": log.get("status_code"),
        "Timestamp": format_timestamp(data.to_ms(log["created_at"]), timestamp_format),
    }


def _batch_name(start_s: int, end_s: int, content: bytes) -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    day = time.strftime("%Y%m%d", time.gmtime(start_s))
    digest = hashlib.sha256(content).hexdigest()[:8]
    return f"{day}/{time.strftime(fmt, time.gmtime(start_s))}_{time.strftime(fmt, time.gmtime(end_s))}_{digest}.log.gz"


def write_records(
    records: Iterable[tuple[int, dict[str, Any]]],
    destination: str,
    *,
    batch_seconds: int = DEFAULT_BATCH_SECONDS,
    storage_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Write ``(created_ms, record)`` pairs, in ``created_ms`` order, as Logpush objects under
    ``destination`` (a local folder or any fsspec URL); returns ``{"path", "records", "bytes"}``
    per object written, in order."""
    import fsspec

    if batch_seconds < 1:
        raise ValueError(f"batch_seconds must be at least 1, got {batch_seconds!r}")
    fs, root = fsspec.core.url_to_fs(destination, **(storage_options or {}))
    root = root.rstrip("/")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    written: list[dict[str, Any]] = []

    def flush(batch: int, lines: list[bytes]) -> None:
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
            gz.writelines(lines)
        content = buf.getvalue()
        start_s = batch * batch_seconds
        path = f"{root}/{_batch_name(start_s, start_s + batch_seconds, content)}"
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(path, "wb") as fh:
            fh.write(content)
        shown = path if protocol in ("file", "local") else f"{protocol}://{path}"
        written.append({"path": shown, "records": len(lines), "bytes": len(content)})

    current: int | None = None
    lines: list[bytes] = []
    for created_ms, record in records:
        batch = created_ms // 1000 // batch_seconds
        if current is not None and batch != current:
            if batch < current:
                raise ValueError("records must come in created_ms order")
            flush(current, lines)
            lines = []
        current = batch
        lines.append(json.dumps(record, separators=(",", ":")).encode("utf-8") + b"\n")
    if current is not None:
        flush(current, lines)
    return written


def write_logpush_files(
    emu: LogSource,
    gateway_id: str,
    destination: str,
    public_key_pem: str | bytes,
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    batch_seconds: int = DEFAULT_BATCH_SECONDS,
    timestamp_format: str = "unixnano",
    shared_key: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Write the logs of ``gateway_id`` with ``start <= created_at < end`` (bounds optional) as a
    Logpush job would push them to ``destination``; returns the objects written.

    :param emu: the emulator whose logs (its ground truth) are written.
    :param gateway_id: the gateway; its logs' ``Gateway`` field.
    :param destination: a local folder or an fsspec URL (``s3://bucket/prefix``, ``file://...``).
    :param public_key_pem: the RSA public key (SPKI PEM) the fields are encrypted under.
    :param batch_seconds: seconds of logs per object (batches aligned on the epoch).
    :param timestamp_format: ``unixnano`` (default), ``unix`` or ``rfc3339``.
    :param shared_key: one AES key for the three encrypted fields of a log.
    :param storage_options: keyword arguments of the fsspec filesystem (endpoint, credentials).
    """
    format_timestamp(0, timestamp_format)  # refuse an unknown format before writing anything
    encryptor = LogpushEncryptor(public_key_pem, shared_key=shared_key)

    def records() -> Iterator[tuple[int, dict[str, Any]]]:
        for log, request_body, response_body in emu.iter_logs_with_bodies(gateway_id, start, end):
            record = logpush_record(
                log,
                request_body,
                response_body,
                gateway_id=gateway_id,
                encryptor=encryptor,
                timestamp_format=timestamp_format,
            )
            yield data.to_ms(log["created_at"]), record

    return write_records(records(), destination, batch_seconds=batch_seconds, storage_options=storage_options)

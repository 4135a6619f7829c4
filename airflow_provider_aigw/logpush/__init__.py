"""Cloudflare Logpush files of the ``ai_gateway_events`` dataset: decrypted and mapped to the export schema.

Airflow-free, like the client: it needs a filesystem (fsspec), a private key and a window.

- :mod:`.decrypt`: the private key, the encrypted envelopes and the cache of unwrapped keys;
- :mod:`.records`: one record's ``Timestamp`` and its row of the export schema;
- :mod:`.files`: the files of a window (date folders, names) and their records, streamed.

Public API::

    LogpushPrivateKey.from_pem(pem, passphrase=None) -> LogpushPrivateKey
    EnvelopeDecryptor(key, cache_size=4096).open(value, field=...) -> bytes | value
    record_time_ns(record) -> int
    to_log(record, decryptor=None) -> dict      # the Logs API shape (the export's input)
    to_row(record, decryptor=None) -> dict      # one row of export.schema.COLUMNS
    select_files(fs, root, start, end, margin=DEFAULT_MARGIN) -> list[LogpushFile]
    iter_records(fs, file, start, end, on_error=None) -> Iterator[(line, ns, record)]
"""

from __future__ import annotations

from airflow_provider_aigw.logpush.decrypt import EnvelopeDecryptor, LogpushPrivateKey
from airflow_provider_aigw.logpush.files import DEFAULT_MARGIN, LogpushFile, iter_records, select_files
from airflow_provider_aigw.logpush.records import GATEWAY_FIELD, record_time_ns, to_log, to_row

__all__ = [
    "DEFAULT_MARGIN",
    "GATEWAY_FIELD",
    "EnvelopeDecryptor",
    "LogpushFile",
    "LogpushPrivateKey",
    "iter_records",
    "record_time_ns",
    "select_files",
    "to_log",
    "to_row",
]

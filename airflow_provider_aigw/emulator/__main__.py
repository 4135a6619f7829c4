"""Command line: ``python -m airflow_provider_aigw.emulator --help``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import textwrap
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_aigw.emulator.data import format_ms, to_ms
from airflow_provider_aigw.emulator.faults import DELETE_ORDERS
from airflow_provider_aigw.emulator.logpush import DEFAULT_BATCH_SECONDS, TIMESTAMP_FORMATS, write_logpush_files
from airflow_provider_aigw.emulator.server import DEFAULT_ACCOUNT_ID, EmulatorServer


def _gateway_spec(value: str) -> tuple[str, int]:
    name, _, count = value.partition(":")
    try:
        return name, int(count) if count else 10_000
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ID[:COUNT], got {value!r}") from None


def _rate(value: str) -> tuple[int, float]:
    n, _, period = value.partition("/")
    try:
        return int(n), float(period) if period else 300.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N/PERIOD_S, got {value!r}") from None


#: The admin routes (unauthenticated, never faulted, never counted), as ``--help`` and docs/emulator.rst
#: list them: (method and path under http://HOST:PORT, what it does).
ADMIN_ROUTES: tuple[tuple[str, str], ...] = (
    (
        "GET  /__emulator__/stats",
        "request counters: total, by kind (list/get/request/response/patch/delete), "
        "429s and 5xx served, connections dropped, recent requests",
    ),
    ("POST /__emulator__/reset-stats", "zero the counters"),
    ("GET  /__emulator__/faults", "the fault settings"),
    (
        "POST /__emulator__/faults",
        'change fault settings, JSON body e.g. {"error_rate": 0.2, "latency_ms": 50, '
        '"rate_limit_requests": 1200, "rate_limit_period_s": 300}; keys: latency_ms, latency_jitter_ms, '
        "error_rate, drop_rate, rate_limit_requests, rate_limit_period_s, lockout_s, churn_insert_per_request, "
        "capacity, ignore_filter_keys, ignore_delete_filter_keys, fail_body_ids, fail_body_status, envelope_bodies, "
        "max_url_bytes, delete_order, delete_max_logs, seed",
    ),
    ("GET  /__emulator__/gateways", 'gateways and their log counts: {"gateways": {ID: N}}'),
    (
        "POST /__emulator__/gateways/ID/logs",
        'add logs: {"count": N, "start": ISO, "end": ISO[, "seed": S]} '
        "seeds N realistic logs in [start, end); a JSON list of log objects adds those; creates the gateway",
    ),
    (
        "GET  /__emulator__/gateways/ID/ids?start=ISO&end=ISO",
        "ids of the stored logs (ground truth), oldest first, optionally within [start, end)",
    ),
    (
        "POST /__emulator__/gateways/ID/late-logs",
        "logs that become visible only after more API requests: "
        '{"count": N, "start": ISO, "end": ISO, "after_requests": K} or {"logs": [...], "after_requests": K}',
    ),
    (
        "POST /__emulator__/gateways/ID/logpush",
        "write the gateway's logs as Cloudflare Logpush files: "
        '{"destination": URL, "public_key_pem": PEM[, "start": ISO, "end": ISO, "batch_seconds": 30, '
        '"timestamp_format": "unixnano"|"unix"|"rfc3339", "shared_key": false, "storage_options": {...}]}; '
        'answers {"files": [{"path", "records", "bytes"}]}',
    ),
)


def _admin_routes_help() -> str:
    lines = ["admin routes (unauthenticated, never faulted or counted; JSON in and out):"]
    for route, what in ADMIN_ROUTES:
        lines.append(f"  {route}")
        lines.extend(textwrap.wrap(what, width=96, initial_indent=" " * 6, subsequent_indent=" " * 6))
    lines.append("")
    lines.append("python -m airflow_provider_aigw.emulator logpush --help: the same seeded logs as Logpush files.")
    lines.append("")
    lines.append("Stops on SIGTERM / Ctrl-C. Prints (and writes to --ready-file) one JSON line: url, port,")
    lines.append("account_id, token, read_only_token, gateways, start, end, pid.")
    return "\n".join(lines)


def add_seed_arguments(p: argparse.ArgumentParser) -> None:
    """The options that decide the seeded logs, shared by serving and ``logpush``: the same
    options give the same logs."""
    p.add_argument(
        "--gateway",
        action="append",
        type=_gateway_spec,
        metavar="ID[:COUNT]",
        help="gateway to create with COUNT seeded logs (repeatable; default my-gateway:10000)",
    )
    p.add_argument("--days", type=float, default=3.0, help="spread seeded logs over the last N days (default 3)")
    p.add_argument("--start", help="ISO 8601 start of the seeded window (overrides --days)")
    p.add_argument("--end", help="ISO 8601 end of the seeded window (default now)")
    p.add_argument("--seed", type=int, default=0, help="seed of data generation and faults (default 0)")


def seeded_emulator(args: argparse.Namespace, **server_kwargs: Any) -> tuple[EmulatorServer, int, int]:
    """An emulator (not started) holding the gateways and logs ``args`` asks for, and the seeded
    window ``(start_ms, end_ms)``."""
    end_ms = to_ms(args.end) if args.end else to_ms(datetime.now(timezone.utc))
    start_ms = (
        to_ms(args.start)
        if args.start
        else to_ms(datetime.fromtimestamp(end_ms / 1000, timezone.utc) - timedelta(days=args.days))
    )
    emu = EmulatorServer(seed=args.seed, **server_kwargs)
    for gateway_id, count in args.gateway or [("my-gateway", 10_000)]:
        emu.create_gateway(gateway_id)
        if count:
            emu.seed_logs(gateway_id, count, format_ms(start_ms), format_ms(end_ms), return_ids=False)
    return emu, start_ms, end_ms


def build_parser() -> argparse.ArgumentParser:
    """The CLI argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m airflow_provider_aigw.emulator",
        description="Serve a local emulator of the Cloudflare AI Gateway Logs API "
        "(base URL http://HOST:PORT/client/v4) seeded with realistic logs.",
        epilog=_admin_routes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    p.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID, help="32-hex account id")
    p.add_argument("--token", default="aigw-emulator-token", help="API token (Bearer) with read+write access")
    p.add_argument("--read-only-token", default="aigw-emulator-readonly-token", help="API token for GETs only")
    add_seed_arguments(p)
    p.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    p.add_argument("--latency-jitter-ms", type=float, default=0.0, help="extra random latency in [0, J]")
    p.add_argument("--error-rate", type=float, default=0.0, help="fraction of requests answered 5xx")
    p.add_argument("--drop-rate", type=float, default=0.0, help="fraction of connections dropped unanswered")
    p.add_argument(
        "--rate-limit",
        type=_rate,
        metavar="N/PERIOD_S",
        help="more than N requests within PERIOD_S seconds -> 429 lock-out (Cloudflare: 1200/300)",
    )
    p.add_argument("--lockout-s", type=float, default=None, help="lock-out length (default: the period)")
    p.add_argument("--churn-per-request", type=int, default=0, help="new logs inserted per API request")
    p.add_argument("--capacity", type=int, default=None, help="max logs per gateway (oldest deleted beyond)")
    p.add_argument(
        "--total-count-factor",
        type=float,
        default=None,
        metavar="F",
        help="report result_info.total_count times F, rounded down, e.g. 0.5 for a stale count "
        "(admin: total_count_factor)",
    )
    p.add_argument(
        "--total-count-page-only",
        action="store_true",
        help="report as total_count the rows of the current page only (admin: total_count_page_only)",
    )
    p.add_argument(
        "--shuffle-ties",
        action="store_true",
        help="logs sharing a created_at millisecond come in a different (seeded) random order on each "
        "list request (admin: shuffle_ties)",
    )
    p.add_argument(
        "--ignore-list-filter-operator",
        action="append",
        default=[],
        metavar="KEY:OP",
        help="one operator of a filter key silently ignored on list, e.g. created_at:lt (repeatable; "
        "admin: ignore_list_filter_operators)",
    )
    p.add_argument(
        "--ignore-filter-key",
        action="append",
        default=[],
        metavar="KEY",
        help="filter key the server silently ignores on list and delete, as Cloudflare does with filters "
        'it does not apply (repeatable; admin: POST /__emulator__/faults {"ignore_filter_keys": [...]})',
    )
    p.add_argument(
        "--ignore-delete-filter-key",
        action="append",
        default=[],
        metavar="KEY",
        help="filter key silently ignored on DELETE only, e.g. id (repeatable; admin: ignore_delete_filter_keys)",
    )
    p.add_argument(
        "--fail-body-id",
        action="append",
        default=[],
        metavar="LOG_ID",
        help="log id whose /request and /response routes always fail; '*' = every log "
        "(repeatable; admin: fail_body_ids)",
    )
    p.add_argument(
        "--fail-body-status",
        type=int,
        default=500,
        help="HTTP status of those body failures (default 500; 403 for a missing permission; admin: fail_body_status)",
    )
    p.add_argument(
        "--envelope-bodies",
        action="store_true",
        help="answer /request and /response wrapped in the Cloudflare envelope ({success, result}) as the "
        "seed API document describes, instead of the bare body (admin: envelope_bodies)",
    )
    p.add_argument(
        "--max-url-bytes",
        type=int,
        default=None,
        metavar="N",
        help="answer 414 (URI too long) to API requests whose path and query exceed N bytes, applying nothing "
        "(admin: max_url_bytes)",
    )
    p.add_argument(
        "--delete-order",
        choices=DELETE_ORDERS,
        default="asked",
        help="order in which a DELETE removes its matches: as asked (default), asc or desc by created_at "
        "whatever was asked, or random (seeded); with --ignore-delete-filter-key id it picks which logs of a "
        "slice go (admin: delete_order)",
    )
    p.add_argument(
        "--delete-max-logs",
        type=int,
        default=None,
        metavar="N",
        help="a DELETE removes at most N logs whatever its limit: a partial delete (admin: delete_max_logs)",
    )
    p.add_argument("--ready-file", help="write the ready JSON (url, port, account_id, token, gateways) here")
    return p


def build_logpush_parser() -> argparse.ArgumentParser:
    """The ``logpush`` subcommand's parser (the seeding options are the serving command's)."""
    p = argparse.ArgumentParser(
        prog="python -m airflow_provider_aigw.emulator logpush",
        description="Seed gateways as the emulator does (same options, same logs for the same seed) and write "
        "their logs as Cloudflare Logpush files of the ai_gateway_events dataset: daily folders, gzip NDJSON, "
        "Metadata/RequestBody/ResponseBody encrypted under an RSA public key. Prints one JSON line: the objects "
        "written per gateway.",
    )
    p.add_argument("--public-key", required=True, metavar="PEM_FILE", help="RSA public key (SPKI PEM) file")
    p.add_argument(
        "--destination", required=True, metavar="URL", help="local folder or fsspec URL (s3://bucket/prefix)"
    )
    p.add_argument(
        "--batch-seconds",
        type=int,
        default=DEFAULT_BATCH_SECONDS,
        help=f"seconds of logs per file (default {DEFAULT_BATCH_SECONDS})",
    )
    p.add_argument("--timestamp-format", choices=TIMESTAMP_FORMATS, default="unixnano", help="default unixnano")
    p.add_argument("--shared-key", action="store_true", help="one AES key for the three encrypted fields of a log")
    add_seed_arguments(p)
    return p


def logpush_main(argv: list[str]) -> int:
    """Seed, write the Logpush files, print what was written."""
    args = build_logpush_parser().parse_args(argv)
    with open(args.public_key, "rb") as fh:
        public_key_pem = fh.read()
    emu, _start, _end = seeded_emulator(args)
    # One job pushes every gateway of the account to one destination, told apart by `Gateway`.
    written = {
        gateway_id: write_logpush_files(
            emu,
            gateway_id,
            args.destination,
            public_key_pem,
            batch_seconds=args.batch_seconds,
            timestamp_format=args.timestamp_format,
            shared_key=args.shared_key,
        )
        for gateway_id in emu.gateway_ids
    }
    print(json.dumps({"files": written}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGTERM / SIGINT (``logpush ...``: write Logpush files instead)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["logpush"]:
        return logpush_main(argv[1:])
    args = build_parser().parse_args(argv)
    emu, start_ms, end_ms = seeded_emulator(
        args,
        host=args.host,
        port=args.port,
        account_id=args.account_id,
        token=args.token,
        read_only_token=args.read_only_token,
    )
    faults: dict[str, Any] = {
        "latency_ms": args.latency_ms,
        "latency_jitter_ms": args.latency_jitter_ms,
        "error_rate": args.error_rate,
        "drop_rate": args.drop_rate,
        "lockout_s": args.lockout_s,
        "churn_insert_per_request": args.churn_per_request,
        "capacity": args.capacity,
        "total_count_factor": args.total_count_factor,
        "total_count_page_only": args.total_count_page_only,
        "shuffle_ties": args.shuffle_ties,
        "ignore_list_filter_operators": args.ignore_list_filter_operator,
        "ignore_filter_keys": args.ignore_filter_key,
        "ignore_delete_filter_keys": args.ignore_delete_filter_key,
        "fail_body_ids": args.fail_body_id,
        "fail_body_status": args.fail_body_status,
        "envelope_bodies": args.envelope_bodies,
        "max_url_bytes": args.max_url_bytes,
        "delete_order": args.delete_order,
        "delete_max_logs": args.delete_max_logs,
    }
    if args.rate_limit:
        faults["rate_limit_requests"], faults["rate_limit_period_s"] = args.rate_limit
    emu.faults.update(**faults)

    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    emu.start()
    info = {
        "url": emu.url,
        "port": emu.port,
        "account_id": emu.account_id,
        "token": emu.token,
        "read_only_token": emu.read_only_token,
        "gateways": {g: emu.count(g) for g in emu.gateway_ids},
        "start": format_ms(start_ms),
        "end": format_ms(end_ms),
        "pid": os.getpid(),
    }
    line = json.dumps(info)
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(line + "\n")
        os.replace(tmp, args.ready_file)
    print(line, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

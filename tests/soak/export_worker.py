"""Child process of the soak test: one export with the export operator, RSS sampled meanwhile.

Usage: ``python tests/soak/export_worker.py '{"destination": ..., "start": ..., "end": ...}'``
with the connection in ``AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT``. Prints one JSON line:
the export summary, elapsed seconds, requests sent, RSS samples and peak RSS (MiB).
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    args = json.loads(sys.argv[1])
    from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator

    op = AIGatewayExportLogsOperator(
        task_id="export", destination=args["destination"], start=args["start"], end=args["end"]
    )
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append((time.monotonic() - started, rss_mib()))

    threading.Thread(target=sample, daemon=True).start()
    samples.append((0.0, rss_mib()))
    summary = op.execute({})
    elapsed = time.monotonic() - started
    done.set()
    samples.append((elapsed, rss_mib()))
    print(
        json.dumps(
            {
                "summary": {k: v for k, v in summary.items() if k != "paths"},
                "elapsed_s": elapsed,
                "requests": op.hook.client.requests_sent,
                "samples": samples,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()

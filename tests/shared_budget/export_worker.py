"""Child process of the shared-budget tests: one export with the export operator.

Usage: ``python export_worker.py '{"gateway_id": ..., "destination": ..., "start": ..., "end": ...}'``
with the connection in ``AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT``. Prints ``ready`` once
imported, starts when a line arrives on stdin (so that every worker starts together), then
prints one JSON line: the export summary (or the error), requests sent and wall-clock
start/end (epoch seconds).
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    args = json.loads(sys.argv[1])
    from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator

    op = AIGatewayExportLogsOperator(
        task_id=f"export_{args['gateway_id']}",
        gateway_id=args["gateway_id"],
        destination=args["destination"],
        start=args["start"],
        end=args["end"],
    )
    print("ready", flush=True)
    sys.stdin.readline()
    result: dict[str, object] = {"gateway_id": args["gateway_id"], "started": time.time()}
    try:
        summary = op.execute({})
        result["summary"] = {k: v for k, v in summary.items() if k != "paths"}
    except Exception as err:
        result["error"] = f"{type(err).__name__}: {err}"
    result["finished"] = time.time()
    result["requests"] = op.hook.client.requests_sent
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()

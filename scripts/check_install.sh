#!/usr/bin/env bash
# `make test-install`: runs the README's install blocks verbatim (the bash blocks between
# <!-- install:begin --> and <!-- install:end -->, in order) in a fresh copy of the repository
# (what a clone of the current tree holds) in a temp dir, with a new venv: Airflow, the provider
# from a built wheel, the example DAGs, the emulator and one archive run under `airflow dags test`.
# Then checks the outcome against the emulator's ground truth. Only change to the README's text:
# the emulator's port 8787 becomes a free one. Uses pip's cache as is.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/aigw-install-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
started=$(date +%s)

# A fresh clone: the tracked and new (not ignored) files of this tree, nothing built or installed.
mkdir "$WORK/clone"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard | (cd "$ROOT" && xargs -0 tar -cf - --) |
    tar -xf - -C "$WORK/clone"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BLOCKS=$(awk '/<!-- install:begin -->/ {on = 1; next} /<!-- install:end -->/ {on = 0} on && !/^```/' "$ROOT/README.md" |
    sed "s/8787/$PORT/g")
[ -n "$BLOCKS" ] || { echo "no install blocks found in README.md" >&2; exit 1; }

cat > "$WORK/run.sh" <<EOF
set -euo pipefail
trap 'kill \$(jobs -p) 2>/dev/null || true' EXIT
$BLOCKS

# --- checks (not in the README) ---
python - <<'PY'
import json, urllib.request
from pathlib import Path
import airflow_provider_aigw
from airflow_provider_aigw.export import iter_manifest_records, read_manifest

# the wheel's copy, not the clone's source
assert "site-packages" in airflow_provider_aigw.__file__, airflow_provider_aigw.__file__

admin = "http://127.0.0.1:$PORT/__emulator__/gateways"
left = json.load(urllib.request.urlopen(admin))["gateways"]["my-gateway"]
in_day = json.load(urllib.request.urlopen(admin + "/my-gateway/ids?start=2026-11-26T00:00:00Z&end=2026-11-27T00:00:00Z"))["ids"]
manifest = read_manifest(f"file://{Path.cwd()}/archive/gateway=my-gateway/_manifests/20261126T000000Z-20261127T000000Z.jsonl.gz.json")
rows = list(iter_manifest_records(manifest, verify=True))
ids = {r["id"] for r in rows}
assert rows and len(ids) == len(rows) == manifest["count"], "exported ids are not unique"
assert all("2026-11-26T" <= r["created_at"] < "2026-11-27T" for r in rows), "an exported log is outside the day"
assert in_day == [], f"{len(in_day)} logs of the day are still in the gateway"
assert left + len(ids) == 5000, f"{5000 - left} logs deleted, {len(ids)} exported"
print(f"install check: archived {len(ids)} logs of 2026-11-26 in {len(manifest['files'])} files; {left} other logs kept")
PY
EOF

cd "$WORK/clone"
bash "$WORK/run.sh"
echo "install check took $(( $(date +%s) - started )) s"
echo "install: 1 passed, 0 failed"

#!/usr/bin/env bash
# `make test-install`: runs the README's install blocks verbatim (the bash blocks between
# <!-- install:begin --> and <!-- install:end -->, in order) in a fresh copy of the repository
# (what a clone of the current tree holds) in a temp dir, with a new venv: Airflow with its
# constraints file, the provider with the [parquet] extra from a built wheel, the example DAGs,
# the emulator and one archive run under `airflow dags test`. Then the README's first DAG (the
# python block between <!-- first-dag:begin --> and <!-- first-dag:end -->) goes into the DAGs
# folder, must load, and archives 2026-11-27 under `airflow dags test`. Both archives are checked
# against the emulator's ground truth. Uses pip's cache as is.
#
# Changes to the README's text, and only these: the emulator's port 8787 becomes a free one; the
# first DAG's destination s3://aws_default@my-bucket/ai-gateway becomes a local folder (no S3
# here); and when Airflow's constraints URL (raw.githubusercontent.com) cannot be fetched from
# this machine, it becomes a local file pinning only apache-airflow (printed when it happens).
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

# Airflow's constraints file, as the README fetches it; a local stand-in when GitHub is unreachable.
CONSTRAINTS_BASE="https://raw.githubusercontent.com/apache/airflow/"
AIRFLOW_VERSION=$(sed -n 's/^AIRFLOW_VERSION=\([0-9.]*\).*/\1/p' <<<"$BLOCKS" | head -n 1)
PYTHON_VERSION=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ -n "$AIRFLOW_VERSION" ] && grep -qF "$CONSTRAINTS_BASE" <<<"$BLOCKS" ||
    { echo "README.md's install block no longer installs AIRFLOW_VERSION with its constraints file" >&2; exit 1; }
constraints_url="${CONSTRAINTS_BASE}constraints-$AIRFLOW_VERSION/constraints-$PYTHON_VERSION.txt"
if curl -sfL --max-time 15 -o /dev/null "$constraints_url"; then
    echo "constraints: $constraints_url (as the README has it)"
else
    local_dir="$WORK/constraints/constraints-$AIRFLOW_VERSION"
    mkdir -p "$local_dir"
    echo "apache-airflow==$AIRFLOW_VERSION" >"$local_dir/constraints-$PYTHON_VERSION.txt"
    BLOCKS=${BLOCKS//"$CONSTRAINTS_BASE"/"file://$WORK/constraints/"}
    echo "constraints: $constraints_url is unreachable from here; using a local file pinning only apache-airflow==$AIRFLOW_VERSION"
fi

# The README's first DAG, archiving to a local folder instead of S3.
FIRST_DAG=$(awk '/<!-- first-dag:begin -->/ {on = 1; next} /<!-- first-dag:end -->/ {on = 0} on && !/^```/' "$ROOT/README.md")
grep -qF 's3://aws_default@my-bucket/ai-gateway' <<<"$FIRST_DAG" ||
    { echo "no first DAG (with its s3:// destination) found in README.md" >&2; exit 1; }
FIRST_DAG=${FIRST_DAG//"s3://aws_default@my-bucket/ai-gateway"/"file://$WORK/first-dag-archive"}
printf '%s\n' "$FIRST_DAG" >"$WORK/readme_first_dag.py"
FIRST_DAG_ID=$(sed -n 's/.*dag_id="\([^"]*\)".*/\1/p' "$WORK/readme_first_dag.py" | head -n 1)

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

# --- the README's first DAG: loads from the DAGs folder, then archives 2026-11-27 as Parquet ---
cp "$WORK/readme_first_dag.py" "\$AIRFLOW_HOME/dags/readme_first_dag.py"
python - <<'PY'
import os
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # older Airflow
    from airflow.models.dagbag import DagBag

bag = DagBag(dag_folder=os.environ["AIRFLOW_HOME"] + "/dags/readme_first_dag.py")  # examples: off (README)
assert not bag.import_errors, bag.import_errors
assert "$FIRST_DAG_ID" in bag.dags, sorted(bag.dags)
print("install check: the README's first DAG loads ($FIRST_DAG_ID)")
PY
# Airflow 3 runs a manual logical date L over the timetable's interval ending at L: [11-27, 11-28).
airflow dags test $FIRST_DAG_ID 2026-11-28
python - <<'PY'
import json, urllib.request
from pathlib import Path
from airflow_provider_aigw.export import iter_manifest_records, read_manifest

admin = "http://127.0.0.1:$PORT/__emulator__/gateways"
left = json.load(urllib.request.urlopen(admin))["gateways"]["my-gateway"]
in_day = json.load(urllib.request.urlopen(admin + "/my-gateway/ids?start=2026-11-27T00:00:00Z&end=2026-11-28T00:00:00Z"))["ids"]
(path,) = Path("$WORK/first-dag-archive/gateway=my-gateway/_manifests").glob("20261127T000000Z-20261128T000000Z.*.json")
manifest = read_manifest(f"file://{path}")
rows = list(iter_manifest_records(manifest, verify=True))
ids = {r["id"] for r in rows}
assert manifest["format"] == "parquet" and all(f["uri"].endswith(".parquet") for f in manifest["files"]), manifest["files"]
assert rows and len(ids) == len(rows) == manifest["count"], "exported ids are not unique"
assert all("2026-11-27T" <= r["created_at"] < "2026-11-28T" for r in rows), "an exported log is outside the day"
assert in_day == [], f"{len(in_day)} logs of 2026-11-27 are still in the gateway"
first = read_manifest(f"file://{Path.cwd()}/archive/gateway=my-gateway/_manifests/20261126T000000Z-20261127T000000Z.jsonl.gz.json")
assert left + len(ids) + first["count"] == 5000, f"{5000 - left} logs deleted, {len(ids) + first['count']} exported"
print(f"install check: the README's first DAG archived {len(ids)} logs of 2026-11-27 as Parquet and deleted them; {left} logs left")
PY
EOF

cd "$WORK/clone"
bash "$WORK/run.sh"
echo "install check took $(( $(date +%s) - started )) s"
echo "install: 1 passed, 0 failed"

#!/usr/bin/env bash
# Run the full test suite against several Airflow releases, one venv per release.
#
#   scripts/test_matrix.sh [VERSION ...]         (default: $AIRFLOW_VERSIONS, else the list below)
#
# Each release gets .venv-matrix/<version>/ holding `pip install -e '.[dev]' apache-airflow==<version>`
# plus the pins that release needs (see pins_for). A venv is reused while pyproject.toml and the pins
# are unchanged. Prints a pass/fail table; exits non-zero when any release fails to install or test.
#
# Every run has a Fernet key configured, as every real deployment does (connection passwords are
# then stored encrypted): AIRFLOW__CORE__FERNET_KEY, a new one per run unless already set.
#
# Environment: PYTHON (interpreter for new venvs, default python3), PYTEST_ARGS (extra pytest args),
# MATRIX_DIR (default .venv-matrix), MATRIX_REINSTALL=1 (rebuild the venvs),
# AIRFLOW__CORE__FERNET_KEY (default: generated).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DEFAULT_VERSIONS="2.11.2 3.0.6 3.1.8 3.3.2"
if [ "$#" -gt 0 ]; then
    VERSIONS="$*"
else
    VERSIONS="${AIRFLOW_VERSIONS:-$DEFAULT_VERSIONS}"
fi
PYTHON="${PYTHON:-python3}"
MATRIX_DIR="${MATRIX_DIR:-$ROOT/.venv-matrix}"
PYTEST_ARGS="${PYTEST_ARGS:-}"

# Extra requirements a release needs in a test environment (not package dependencies).
# Airflow publishes constraint files for this, but only PyPI is reachable here, so the
# pins are the minimal set found by running the suite on each release.
pins_for() {
    case "$1" in
        # Airflow 2.10 and 3.0 (task-sdk 1.0) accept universal-pathlib 0.3 but their ObjectStoragePath
        # rejects every protocol with it ("detected protocol file which is incompatible").
        2.10.*) echo "universal-pathlib<0.3" ;;
        # 3.0 also has no upper bounds on its execution-API stack: with today's cadwyn/fastapi every
        # task of dag.test() (even a one-task DAG) fails to start, "PATCH /task-instances/{id}/run
        # 422: Input should be a valid dictionary". 3.1 bounds them (cadwyn 5.4, fastapi 0.117).
        3.0.*) echo "universal-pathlib<0.3 cadwyn<5.5 fastapi[standard]<0.118" ;;
        # 2.11 sets an attribute on cryptography's MultiFernet, which became a Rust class without
        # one: with a Fernet key and cryptography 51, every connection with a password fails
        # ("'MultiFernet' object has no attribute 'is_encrypted'"). Airflow's constraints pin 42.0.8.
        2.11.*) echo "cryptography==42.0.8" ;;
        *) echo "" ;;
    esac
}

install_venv() {  # version venv log
    local version=$1 venv=$2 log=$3 pins stamp want
    pins=$(pins_for "$version")
    want="airflow=$version pins=$pins pyproject=$(sha256sum pyproject.toml | cut -c1-16)"
    stamp="$venv/.matrix-stamp"
    if [ "${MATRIX_REINSTALL:-0}" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        echo "reusing $venv" >>"$log"
        return 0
    fi
    rm -rf "$venv"
    {
        "$PYTHON" -m venv "$venv" &&
            "$venv/bin/python" -m pip install --quiet --upgrade pip &&
            # shellcheck disable=SC2086  # $pins is a space-separated list
            "$venv/bin/python" -m pip install --quiet -e '.[dev]' "apache-airflow==$version" $pins
    } >>"$log" 2>&1 || return 1
    # Conflicts are recorded, not fatal: the suite is the judge.
    "$venv/bin/python" -m pip check >>"$log" 2>&1 || echo "    pip check reported conflicts (see $log)"
    echo "$want" >"$stamp"
}

# junit xml -> "passed failed skipped"
count_junit() {
    "$1" - "$2" <<'PY'
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0 0")
    raise SystemExit
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
tests = sum(int(s.get("tests", 0)) for s in suites)
failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(tests - failed - skipped, failed, skipped)
PY
}

# A Fernet key in the Fernet format (32 random bytes, URL-safe base64), new for each run.
AIRFLOW__CORE__FERNET_KEY="${AIRFLOW__CORE__FERNET_KEY:-$("$PYTHON" -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')}"
export AIRFLOW__CORE__FERNET_KEY
echo "=== Fernet key configured (AIRFLOW__CORE__FERNET_KEY): connection passwords are stored encrypted"

mkdir -p "$MATRIX_DIR"
rows=()
overall=0
for version in $VERSIONS; do
    venv="$MATRIX_DIR/$version"
    logdir="$MATRIX_DIR/logs"
    mkdir -p "$logdir"
    install_log="$logdir/$version-install.log"
    test_log="$logdir/$version-test.log"
    junit="$logdir/$version-junit.xml"
    : >"$install_log"
    echo "=== Airflow $version: installing into $venv (log: $install_log)"
    t0=$(date +%s)
    if ! install_venv "$version" "$venv" "$install_log"; then
        tail -n 30 "$install_log"
        rows+=("$version|-|-|-|$(($(date +%s) - t0))s|INSTALL FAILED")
        overall=1
        continue
    fi
    installed=$("$venv/bin/python" -c 'import airflow; print(airflow.__version__)' 2>/dev/null || echo "?")
    echo "=== Airflow $installed: running the suite (log: $test_log)"
    t1=$(date +%s)
    rm -f "$junit"
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pytest -q -p no:cacheprovider --continue-on-collection-errors --junitxml="$junit" $PYTEST_ARGS >"$test_log" 2>&1
    rc=$?
    secs=$(($(date +%s) - t1))
    read -r passed failed skipped < <(count_junit "$venv/bin/python" "$junit")
    tail -n 15 "$test_log"
    if [ "$rc" -eq 0 ] && [ "$installed" = "$version" ]; then
        result=PASS
    else
        result="FAIL (pytest exit $rc)"
        [ "$installed" = "$version" ] || result="FAIL (installed $installed)"
        overall=1
    fi
    rows+=("$version|$passed|$failed|$skipped|${secs}s|$result")
done

echo
printf '%-10s | %6s | %6s | %7s | %6s | %s\n' "airflow" "passed" "failed" "skipped" "time" "result"
printf '%s\n' "-----------+--------+--------+---------+--------+--------------------"
for row in "${rows[@]}"; do
    IFS='|' read -r v p f s t r <<<"$row"
    printf '%-10s | %6s | %6s | %7s | %6s | %s\n' "$v" "$p" "$f" "$s" "$t" "$r"
done
exit "$overall"

"""No secret leaked: run every example DAG with a distinctive token, then search everything the
runs left behind - task logs and console output, XComs, rendered template fields (the metadata DB,
byte for byte, WAL included), exception texts and reprs - for it. Zero occurrences allowed; only
the emulator's own view of the Authorization header may hold it. The same for a Logpush import
run whose key connection holds an encrypted PEM and its passphrase: no line of the key (in either
form) and no passphrase anywhere.
"""

from __future__ import annotations

import json
import traceback
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.budget import RequestBudget
from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.exceptions import AIGatewayError
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from airflow_provider_aigw.patch import LogPatch
from tests.compat_helpers import dag_test

from .conftest import CONN_ENV, FAST_RETRIES, GW

pytestmark = [pytest.mark.integration, pytest.mark.dags]

SECRET = f"aigw-leak-canary-{uuid.uuid4().hex}"
UTC = timezone.utc
LOGICAL = datetime(2026, 1, 10, tzinfo=UTC)
START, END = LOGICAL - timedelta(days=1), LOGICAL
EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
#: Test-only DAGs; on Airflow 3.1+ ``dag.test()`` runs only DAGs that a configured bundle holds.
RELIABILITY_DAGS = Path(__file__).resolve().parent / "dags"
RELIABILITY_BUNDLES = [
    {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
    {
        "name": "aigw-reliability-dags",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(RELIABILITY_DAGS)},
    },
]


def load_dag(dag_id: str, folder: Path = EXAMPLE_DAGS) -> Any:
    from tests.compat_helpers import DagBag

    bag = DagBag(dag_folder=str(folder / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[dag_id]
    for task in dag.tasks:  # failing runs fail at once, not after the examples' retry delays
        task.retries = 0
    return dag


def states(run: Any) -> dict[str, str]:
    return {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances()}


def haystack_files(home: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in home.rglob("*") if p.is_file()}


@pytest.fixture
def emu(aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> EmulatorServer:
    server: EmulatorServer = aigw_emulator_factory(gateways={GW: 0}, token=SECRET)
    server.seed_logs(GW, 300, START, END, seed=2)
    server.seed_logs(GW, 20, END, END + timedelta(hours=6), seed=3)
    monkeypatch.setenv(CONN_ENV, server.airflow_conn_json(GW, **FAST_RETRIES))
    return server


def test_example_dags_leak_no_token(emu, aigw_emulator_factory, monkeypatch, tmp_path, capfd, caplog):
    import os

    home = Path(os.environ["AIRFLOW_HOME"])
    runs: dict[str, Any] = {}

    outcome: dict[str, set[str]] = {}

    def run(name: str, dag_id: str, logical: datetime, conf: dict[str, Any] | None = None) -> None:
        runs[name] = dag_test(load_dag(dag_id), logical_date=logical, run_conf=conf)
        outcome[name] = set(states(runs[name]).values())

    run("archive", "aigw_archive_logs", LOGICAL, {"destination": f"file://{tmp_path / 'a'}"})
    # Next day: a log arrives late, behind the export's cursor: the delete refuses with an error.
    emu.seed_logs(GW, 200, END, END + timedelta(days=1), seed=4)
    late = {"created_at": (END + timedelta(minutes=1)).isoformat()}
    emu.schedule_late_logs(GW, [late], after_requests=3)  # after the sensor, the count and the first page
    run("archive-late", "aigw_archive_logs", LOGICAL + timedelta(days=1), {"destination": f"file://{tmp_path / 'b'}"})
    run("feedback", "aigw_feedback", datetime(2026, 1, 10, 6, tzinfo=UTC))
    emu.create_gateway("gw-b")
    emu.seed_logs("gw-b", 30, START, END)
    run(
        "multi", "aigw_multi_gateway_export", LOGICAL, {"gateways": [GW, "gw-b"], "destination": f"file://{tmp_path}/c"}
    )
    # The token is refused: tasks fail on a 403 carrying the API's error text.
    other = aigw_emulator_factory(gateways={GW: 10}, token="a-different-token")
    conn = json.loads(other.airflow_conn_json(GW, **FAST_RETRIES))
    monkeypatch.setenv(CONN_ENV, json.dumps({**conn, "password": SECRET}))
    run("forbidden", "aigw_feedback", datetime(2026, 1, 10, 12, tzinfo=UTC))

    # The runs did what they should (so that there is something to scan).
    assert outcome["archive"] == {"success"}
    assert states(runs["archive-late"])["delete_exported_logs[-1]"] == "failed"
    assert outcome["feedback"] == {"success"}
    assert outcome["multi"] == {"success"}
    assert "failed" in outcome["forbidden"]
    assert any(r["authorization"] == f"Bearer {SECRET}" for r in emu.stats.requests)  # it was really used

    # What the runs stored: XComs and rendered template fields exist in the DB we scan.
    stored = stored_values([run.run_id for run in runs.values()])

    # Reprs of every task, its hook and client, and the texts of the errors the client raises.
    texts: list[str] = []
    monkeypatch.setenv(CONN_ENV, emu.airflow_conn_json(GW, **FAST_RETRIES))
    for dag_id in ("aigw_archive_logs", "aigw_feedback", "aigw_multi_gateway_export"):
        for task in load_dag(dag_id).tasks:
            texts += [repr(task), str(vars(task))]
            hook = getattr(task, "hook", None)
            if isinstance(hook, AIGatewayHook):
                texts += [repr(hook), repr(hook.client), str(vars(hook))]
    texts += error_texts(emu, other)

    out, err = capfd.readouterr()
    # Airflow 3.0's supervisor logs, at debug level, the very request by which the hook registers
    # the token with the secrets masker (``MaskSecret(value=...)``): Airflow's line, not ours.
    console = "\n".join(line for line in (out + err).splitlines() if "type='MaskSecret'" not in line)
    scanned = {
        "console": console,
        "log records": caplog.text
        + "".join("".join(traceback.format_exception(*r.exc_info)) for r in caplog.records if r.exc_info),
        "stored xcoms/rendered fields": "\n".join(stored),
        "reprs and errors": "\n".join(texts),
    }
    for where, text in scanned.items():
        assert SECRET not in text, f"token found in {where}"
    assert "403" in scanned["console"] + scanned["log records"]  # the failures were logged and scanned
    for name, data in haystack_files(home).items():  # task logs, the sqlite DB and its WAL, ...
        assert SECRET.encode() not in data, f"token found in {name}"


def _key_lines(key: Any, passphrase: str) -> set[str]:
    """The base64 lines of ``key`` as the encrypted PEM the connection holds, and as the plain
    PKCS#8 and PKCS#1 PEMs it decrypts to: no form of the key may show anywhere."""
    from cryptography.hazmat.primitives import serialization

    forms = [
        (serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(passphrase.encode())),
        (serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        (serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()),
    ]
    lines: set[str] = set()
    for form, protection in forms:
        pem = key.private_bytes(serialization.Encoding.PEM, form, protection).decode()
        lines |= {line for line in pem.splitlines() if "PRIVATE KEY" not in line and len(line) >= 32}
    return lines


def test_logpush_import_leaks_no_key(aigw_emulator_factory, airflow_db, monkeypatch, tmp_path, capfd, caplog):
    """A real run of a Logpush import (an encrypted PEM and its passphrase in the key connection),
    then one with a wrong passphrase: no line of the key and neither passphrase in anything left behind."""
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from airflow_provider_aigw.emulator.logpush import write_logpush_files

    home = Path(os.environ["AIRFLOW_HOME"])
    passphrase, wrong = f"aigw-pass-canary-{uuid.uuid4().hex}", f"aigw-wrong-canary-{uuid.uuid4().hex}"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encrypted_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    ).decode()
    needles = _key_lines(key, passphrase) | {passphrase, wrong}

    emu: EmulatorServer = aigw_emulator_factory(gateways={GW: 0})
    emu.seed_logs(GW, 40, START, END, seed=5)
    emu.seed_logs(GW, 10, END, END + timedelta(hours=6), seed=6)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write_logpush_files(emu, GW, str(tmp_path / "push"), public, batch_seconds=3600)
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(RELIABILITY_BUNDLES))
    dag = load_dag("aigw_reliability_logpush", RELIABILITY_DAGS)

    def run(logical: datetime, conn: dict[str, Any], archive: str) -> Any:
        monkeypatch.setenv("AIRFLOW_CONN_AIGW_LOGPUSH_KEY", json.dumps({"conn_type": "generic", **conn}))
        conf = {
            "source": f"file://{tmp_path / 'push'}",
            "destination": f"file://{tmp_path / archive}",
            "start": START.isoformat(),
            "end": END.isoformat(),
        }
        return dag_test(dag, logical_date=logical, run_conf=conf)

    extra = {"gateway_id": GW, "passphrase": passphrase}
    imported = run(LOGICAL, {"password": encrypted_pem, "extra": json.dumps(extra)}, "archive")
    wrong_conn = {"password": encrypted_pem, "login": wrong, "extra": json.dumps({"gateway_id": GW})}
    refused = run(LOGICAL + timedelta(hours=1), wrong_conn, "refused")

    # The runs did what they should: every log of the window imported, the wrong passphrase refused.
    assert set(states(imported).values()) == {"success"}
    assert states(refused)["import_logpush[-1]"] == "failed"
    counts = [ti.xcom_pull(task_ids="count_rows") for ti in imported.get_task_instances() if ti.task_id == "count_rows"]
    assert counts == [len(emu.ids(GW, START, END))]
    stored = stored_values([imported.run_id, refused.run_id])

    out, err = capfd.readouterr()
    console = "\n".join(line for line in (out + err).splitlines() if "type='MaskSecret'" not in line)
    task = dag.get_task("import_logpush")
    scanned = {
        "console": console,
        "log records": caplog.text
        + "".join("".join(traceback.format_exception(*r.exc_info)) for r in caplog.records if r.exc_info),
        "stored xcoms/rendered fields": "\n".join(stored),
        "reprs": "\n".join([repr(task), str(vars(task)), repr(task.hook), str(vars(task.hook))]),
    }
    assert "wrong passphrase" in scanned["console"] + scanned["log records"]  # the failure was logged and scanned
    for where, text in scanned.items():
        found = [needle[:12] for needle in needles if needle in text]
        assert not found, f"key material or passphrase found in {where}: {found}"
    files = haystack_files(home) | haystack_files(tmp_path)  # task logs, the DB and its WAL, the archive
    for name, data in files.items():
        found = [needle[:12] for needle in needles if needle.encode() in data]
        assert not found, f"key material or passphrase found in {name}: {found}"


def stored_values(run_ids: list[str]) -> list[str]:
    """The XComs and rendered template fields the runs stored in the metadata DB, as JSON (both exist)."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    try:
        from airflow.models.xcom import XComModel
    except ImportError:  # Airflow 2.x
        from airflow.models.xcom import BaseXCom as XComModel  # type: ignore[no-redef]
    from airflow.utils.session import create_session

    with create_session() as session:
        xcoms = session.query(XComModel).filter(XComModel.run_id.in_(run_ids)).all()
        rendered = (
            session.query(RenderedTaskInstanceFields).filter(RenderedTaskInstanceFields.run_id.in_(run_ids)).all()
        )
        assert xcoms and rendered
        return [json.dumps(x.value, default=str) for x in xcoms] + [
            json.dumps(r.rendered_fields, default=str) for r in rendered
        ]


def error_texts(emu: EmulatorServer, other: EmulatorServer) -> list[str]:
    """str, repr, attributes and formatted tracebacks of errors of each kind, raised with the secret."""
    kinds: list[Any] = []

    def client(server: EmulatorServer, **kwargs: Any) -> AIGatewayClient:
        kwargs.setdefault("budget", RequestBudget(10**6, 1))
        return AIGatewayClient(
            server.account_id,
            api_token=SECRET,
            base_url=kwargs.pop("base_url", server.url),
            gateway_id=GW,
            backoff_base=0.001,
            backoff_max=0.002,
            **kwargs,
        )

    none: dict[str, Any] = {}
    kinds: list[tuple[dict[str, Any], Any]] = [
        ({"error_rate": 1.0}, lambda: client(emu, max_retries=1).count_logs()),  # 5xx
        (
            {"rate_limit_requests": 1, "rate_limit_period_s": 60, "lockout_s": 60},
            lambda: [client(emu, max_retries=0, retry_deadline=1).count_logs() for _ in range(3)],
        ),  # 429
        ({"drop_rate": 1.0}, lambda: client(emu, max_retries=1).count_logs()),  # dropped connection
        (none, lambda: client(other).count_logs()),  # 403
        (none, lambda: client(other).get_log("0193a7c2-5e1f-7abc-8def-0123456789ab")),  # 403 on a log
        (none, lambda: client(emu).get_log("0193a7c2-5e1f-7abc-8def-0123456789ab")),  # 404
        (none, lambda: client(emu, base_url="http://127.0.0.1:9/client/v4", max_retries=0).count_logs()),
        (none, lambda: client(emu, base_url="http://example.com/client/v4")),  # config error
        (none, lambda: client(emu).patch_log("a/b", LogPatch.of(feedback=1))),  # input error
    ]
    texts: list[str] = []
    for index, (faults, call) in enumerate(kinds):
        emu.faults.reset()
        emu.reset_stats()
        emu.faults.update(**faults)
        try:
            call()
        except AIGatewayError as error:
            texts += [str(error), repr(error), str(vars(error)), "".join(traceback.format_exception(error))]
        else:  # pragma: no cover
            pytest.fail(f"error kind {index} raised nothing")
    emu.faults.reset()
    emu.reset_stats()
    assert len(texts) == 4 * len(kinds)
    return texts

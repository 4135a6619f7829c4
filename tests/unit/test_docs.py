"""The docs' code examples come from files the tests run: every literalinclude names an existing
``# [START x]`` / ``# [END x]`` pair, and every pair in example_dags/ is shown in the docs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
INCLUDE = re.compile(r"^\.\. literalinclude:: (?P<path>\S+)\n(?P<options>(?:[ ]{4}:.*\n)+)", re.MULTILINE)
MARKER = re.compile(r"^\s*# \[(START|END) (\w+)\]$", re.MULTILINE)


def includes() -> list[tuple[Path, str, str]]:
    """(included file, start marker, end marker) of every literalinclude in docs/."""
    found = []
    for page in sorted(DOCS.rglob("*.rst")):
        for m in INCLUDE.finditer(page.read_text()):
            options = dict(re.findall(r":([\w-]+):\s*(.*)", m["options"]))
            found.append(((page.parent / m["path"]).resolve(), options["start-after"], options["end-before"]))
    return found


def markers(path: Path) -> list[tuple[str, str]]:
    return MARKER.findall(path.read_text())


def test_every_literalinclude_names_a_start_end_pair_in_a_tested_file() -> None:
    found = includes()
    assert len(found) >= 9  # list, export x2, delete, patch, sensor, emulator x3
    for path, start, end in found:
        assert path.is_file(), path
        assert path.is_relative_to(ROOT / "example_dags") or path.is_relative_to(ROOT / "tests"), path
        name = re.fullmatch(r"\[START (\w+)\]", start)
        assert name and end == f"[END {name[1]}]", (start, end)
        pairs = markers(path)
        assert pairs.count(("START", name[1])) == 1 and pairs.count(("END", name[1])) == 1, (path, name[1])
        assert pairs.index(("START", name[1])) < pairs.index(("END", name[1]))


def test_every_example_dag_snippet_is_shown_in_the_docs() -> None:
    shown = {(path, start) for path, start, _ in includes()}
    for dag_file in sorted((ROOT / "example_dags").glob("*.py")):
        for kind, name in markers(dag_file):
            if kind == "START":
                assert (dag_file.resolve(), f"[START {name}]") in shown, (dag_file.name, name)


README = ROOT / "README.md"


def heading_anchor(title: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def test_every_relative_link_of_the_readme_resolves() -> None:
    # The reference moved from the README into docs/: each pointer must reach an existing page.
    text = README.read_text()
    anchors = {heading_anchor(t) for t in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    links = [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not t.startswith(("http://", "https://"))]
    assert len(links) >= 15, links
    for target in links:
        path, _, anchor = target.partition("#")
        if path:
            assert (ROOT / path).exists(), target
        else:
            assert anchor in anchors, target
    pages = {p.relative_to(ROOT).as_posix() for p in DOCS.rglob("*.rst")}
    assert pages <= {t.partition("#")[0] for t in links} | {"docs/index.rst"}, "a docs page the README does not name"


def test_readme_first_dag_is_a_valid_archive_dag() -> None:
    from airflow_provider_aigw.operators.ai_gateway import (
        AIGatewayDeleteLogsOperator,
        AIGatewayExportLogsOperator,
    )
    from airflow_provider_aigw.sensors.ai_gateway import AIGatewayLogsSensor

    (code,) = re.findall(r"^## The first DAG\n.*?```python\n(.*?)```", README.read_text(), flags=re.S | re.M)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    dag = namespace["dag"]
    wait, export, delete = (dag.get_task(t) for t in ("wait_for_logs", "export_logs", "delete_exported_logs"))
    assert isinstance(wait, AIGatewayLogsSensor)
    assert isinstance(export, AIGatewayExportLogsOperator) and export.format == "parquet"
    assert isinstance(delete, AIGatewayDeleteLogsOperator)
    assert wait.downstream_task_ids == {"export_logs"} and export.downstream_task_ids == {"delete_exported_logs"}
    # The delete is bound to what the export wrote (its XCom), not to a window of its own.
    assert delete.manifest.operator is export and delete.filters is None and delete.start is None
    # The sensor can see the window settle before it times out (else it is refused at run time).
    assert wait.settle_lag < wait.timeout

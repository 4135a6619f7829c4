"""The code against its map: the module table of ``docs/architecture.rst``, read with ``ast``.

Every import of a provider module counts, wherever it stands: at module level, inside a
function, under ``if TYPE_CHECKING:``. The rules (each a test below, and each proven able to
fail on a small package built in a temporary directory):

1. a module imports only the provider modules its row lists (a package name allows all its
   modules; a package ``__init__`` with no row of its own may import its own modules);
2. no import circles, at any level;
3. no module imports a ``_``-private name or a ``_``-private module (a package's ``__init__``
   may import its own private modules);
4. only a package ``__init__`` re-exports: no other module lists in ``__all__`` a name it
   imported from a provider module, and no module imports a name from a module that only
   re-exports it;
5. every module is on the map, under its own row or its package's, and every name on the map
   is a module;
6. operators import ``listing``, ``client`` and ``export`` for constants only (the paragraph
   under the table names the modules).

The package's root ``__init__`` holds only ``__version__``: it imports nothing and any module
may import it (the sentence under the table says so).

Two more, checked in a fresh interpreter: the emulator (its package, CLI and pytest plugin) never
imports Airflow, and importing every runtime module never loads the emulator (the map's
``emulator`` row: it shares no code with the provider).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "airflow_provider_aigw"
MAP = ROOT / "docs" / "architecture.rst"


# ------------------------------------------------------------------------------ reading the map


@dataclass(frozen=True)
class ModuleMap:
    rows: dict[str, frozenset[str]]  # module or package (relative dotted name) -> what it may import
    constants_only: frozenset[str]  # what operators import for constants only


def parse_map(text: str) -> ModuleMap:
    """The rows of the module table (``* - ``name`` / - owns / - imports``) and the rule below it."""
    table = text.split("The module map\n", 1)[1].split(".. list-table::", 1)[1]
    cells: list[list[str]] = []
    after = ""
    lines = table.splitlines()[1:]
    for number, line in enumerate(lines):
        if line.startswith("   * -"):
            cells.append([line.removeprefix("   * -").strip()])
        elif line.startswith("     -"):
            cells[-1].append(line.removeprefix("     -").strip())
        elif line.startswith("       ") and cells:
            cells[-1][-1] += " " + line.strip()
        elif line.strip() and not line.startswith("   :"):
            after = "\n".join(lines[number:])
            break
    header, *body = cells
    assert header == ["Module", "Owns", "Imports"], header
    rows: dict[str, frozenset[str]] = {}
    for row in body:
        assert len(row) == 3, row
        name = re.fullmatch(r"``([\w.]+)``", row[0])
        assert name, f"a row's module must be one ``name``: {row[0]!r}"
        assert re.fullmatch(r"(``[\w.]+``|[,\s])*", row[2]), f"{name[1]}: Imports holds ``names`` only: {row[2]!r}"
        assert name[1] not in rows, f"two rows for {name[1]}"
        rows[name[1]] = frozenset(re.findall(r"``([\w.]+)``", row[2]))
    rule = re.search(r"Operators may import (.*?) for constants only", " ".join(after.split()))
    assert rule, "the rule under the table: 'Operators may import ... for constants only'"
    return ModuleMap(rows, frozenset(re.findall(r"``([\w.]+)``", rule[1])))


# ---------------------------------------------------------------------------- reading the code


@dataclass(frozen=True)
class Module:
    name: str  # dotted, relative to the package; "" for the package's root __init__
    path: Path
    is_package: bool  # an __init__.py
    tree: ast.Module


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # the provider module imported (relative dotted name)
    name: str | None  # the name imported from it; None when the module itself is imported
    line: int
    bound_as: str | None  # the importer's global it binds at import time (None: in a def, or `import a.b`)


def load_modules(package_dir: Path) -> dict[str, Module]:
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = Module(name, path, is_package, ast.parse(path.read_text(), str(path)))
    return modules


def show(name: str, package: str = PACKAGE) -> str:
    return name or package


def provider_imports(modules: dict[str, Module], package: str = PACKAGE) -> list[Import]:
    """Every import of a provider module, at any depth of every module's tree."""
    found = []

    def relative(absolute: str) -> str | None:
        if absolute == package:
            return ""
        return absolute.removeprefix(package + ".") if absolute.startswith(package + ".") else None

    def join(base: str, name: str) -> str:
        return f"{base}.{name}" if base else name

    for module in modules.values():
        at_import_time = {id(node) for node in module_level(module.tree)}
        for node in ast.walk(module.tree):
            top = id(node) in at_import_time
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = relative(alias.name)
                    if target is not None:
                        bound = alias.asname if top else None
                        found.append(Import(module.name, target, None, node.lineno, bound))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    here = module.name.split(".") if module.name else []
                    if not module.is_package:
                        here = here[:-1]
                    here = here[: len(here) - (node.level - 1)]
                    base: str | None = ".".join([*here, *([node.module] if node.module else [])])
                else:
                    base = relative(node.module or "")
                if base is None:
                    continue
                for alias in node.names:
                    bound = (alias.asname or alias.name) if top else None
                    if join(base, alias.name) in modules:  # a submodule, not a name
                        found.append(Import(module.name, join(base, alias.name), None, node.lineno, bound))
                    else:
                        found.append(Import(module.name, base, alias.name, node.lineno, bound))
    return found


def within(name: str, entry: str) -> bool:
    """``name`` is the module ``entry`` or one of the package ``entry``'s modules."""
    return name == entry or name.startswith(entry + ".")


def row_of(name: str, rows: dict[str, frozenset[str]]) -> str | None:
    """The row that covers a module: its own, else its package's (the longest match)."""
    matches = [row for row in rows if within(name, row)]
    return max(matches, key=len) if matches else None


def is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def module_level(tree: ast.Module) -> list[ast.stmt]:
    """The statements that run at import time, including those under ``if``/``try`` (not in a def)."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop(0)
        out.append(node)
        if isinstance(node, (ast.If, ast.Try)):
            todo += [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
            todo += [stmt for handler in getattr(node, "handlers", []) for stmt in handler.body]
    return out


def dunder_all(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in module_level(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            value = getattr(node, "value", None)
            if isinstance(value, (ast.List, ast.Tuple)):
                names |= {e.value for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return names


# ------------------------------------------------------------------------------------ the rules


def outside_the_rows(modules: dict[str, Module], imports: list[Import], rows: dict[str, frozenset[str]]) -> list[str]:
    """Rule 1: each import lies within what the importer's row allows."""
    found = []
    for imp in imports:
        if imp.target == "" or imp.target == imp.importer:
            continue
        row = row_of(imp.importer, rows)
        if row is not None:
            allowed, where = rows[row], f"row {row}"
        elif imp.importer == "":
            allowed, where = frozenset(), "the root, which holds only __version__"
        elif modules[imp.importer].is_package:
            allowed, where = frozenset({imp.importer}), "its own package"
        else:
            continue  # off the map: rule 5 reports it
        if not any(within(imp.target, entry) for entry in allowed):
            found.append(f"{show(imp.importer)}:{imp.line} imports {imp.target} (outside {where})")
    return list(dict.fromkeys(found))


def circles(imports: list[Import]) -> list[str]:
    """Rule 2: the strongly connected parts of the import graph (Tarjan), with their edges."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.importer, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    parts: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                part.append(top)
                if top == node:
                    break
            if len(part) > 1 or node in graph[node]:
                parts.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    found = []
    for part in parts:
        edges = sorted(
            {f"{show(i.importer)}:{i.line} -> {show(i.target)}" for i in imports if {i.importer, i.target} <= set(part)}
        )
        found.append(f"circle {' / '.join(show(p) for p in part)}: {'; '.join(edges)}")
    return sorted(found)


def private_imports(modules: dict[str, Module], imports: list[Import]) -> list[str]:
    """Rule 3: no ``_``-private name, and no private module of another package."""
    found = []
    for imp in imports:
        if imp.name is not None and is_private(imp.name):
            found.append(f"{show(imp.importer)}:{imp.line} imports private name {imp.name} from {show(imp.target)}")
        own_init = modules[imp.importer].is_package and imp.target.rpartition(".")[0] == imp.importer
        private_parts = [part for part in imp.target.split(".") if is_private(part)] if imp.target else []
        if private_parts and not (own_init and not any(is_private(p) for p in imp.target.split(".")[:-1])):
            found.append(f"{show(imp.importer)}:{imp.line} imports private module {imp.target}")
    return list(dict.fromkeys(found))


def re_exports(modules: dict[str, Module], imports: list[Import]) -> list[str]:
    """Rule 4: only package ``__init__`` modules re-export provider names, and nobody uses a re-export."""
    bound: dict[str, dict[str, Import]] = {name: {} for name in modules}
    for imp in imports:
        if imp.bound_as is not None:
            bound[imp.importer][imp.bound_as] = imp
    found = []
    for name, module in modules.items():
        if module.is_package:
            continue
        for listed in sorted(dunder_all(module.tree) & set(bound[name])):
            found.append(f"{show(name)} re-exports {listed} (from {show(bound[name][listed].target)}) in __all__")
    for imp in imports:
        source = modules.get(imp.target)
        if source is None or source.is_package or imp.name is None or imp.name not in bound[imp.target]:
            continue
        home = bound[imp.target][imp.name].target
        found.append(
            f"{show(imp.importer)}:{imp.line} imports {imp.name} from {imp.target}, which re-exports it from {home}"
        )
    return list(dict.fromkeys(found))


def off_the_map(modules: dict[str, Module], rows: dict[str, frozenset[str]]) -> list[str]:
    """Rule 5: the map and the modules agree both ways."""
    found = []
    for name, module in modules.items():
        if name == "" or row_of(name, rows) is not None:
            continue
        if module.is_package and any(row.startswith(name + ".") for row in rows):
            continue  # a package whose modules have their own rows
        found.append(f"{show(name)} is not on the map")
    named = set(rows) | {entry for allowed in rows.values() for entry in allowed}
    for name in sorted(named):
        if not any(within(module, name) for module in modules):
            found.append(f"the map names {name}, which is no module")
    return list(dict.fromkeys(found))


def operator_calls(imports: list[Import], rules: ModuleMap) -> list[str]:
    """Rule 6: what operators take from listing, client and export are constants."""
    found = []
    for imp in imports:
        if not within(imp.importer, "operators") or not any(within(imp.target, m) for m in rules.constants_only):
            continue
        # The doc's exceptions: they check or describe the operator's arguments and send nothing.
        describes = imp.target == "export.lineage" or imp.name == "destination_assets"
        if describes or (imp.name or "").startswith("validate_"):
            continue
        if imp.name is None or not re.fullmatch(r"[A-Z][A-Z0-9_]*", imp.name):
            what = imp.name or "the module itself"
            found.append(f"{show(imp.importer)}:{imp.line} imports {what} from {imp.target} (constants only)")
    return list(dict.fromkeys(found))


# ---------------------------------------------------------------------------------- the tests


@dataclass(frozen=True)
class Code:
    modules: dict[str, Module]
    imports: list[Import]
    map: ModuleMap


@pytest.fixture(scope="module")
def code() -> Code:
    modules = load_modules(ROOT / PACKAGE)
    return Code(modules, provider_imports(modules), parse_map(MAP.read_text()))


def report(violations: list[str]) -> str:
    return f"{len(violations)} against docs/architecture.rst:\n" + "\n".join(violations)


def test_every_module_is_on_the_map_and_every_name_on_the_map_is_a_module(code: Code) -> None:
    violations = off_the_map(code.modules, code.map.rows)
    assert not violations, report(violations)


def test_each_module_imports_only_what_its_row_allows(code: Code) -> None:
    violations = outside_the_rows(code.modules, code.imports, code.map.rows)
    assert not violations, report(violations)


def test_there_is_no_import_circle(code: Code) -> None:
    violations = circles(code.imports)
    assert not violations, report(violations)


def test_no_module_imports_a_private_name_or_another_packages_private_module(code: Code) -> None:
    violations = private_imports(code.modules, code.imports)
    assert not violations, report(violations)


def test_only_package_inits_re_export(code: Code) -> None:
    violations = re_exports(code.modules, code.imports)
    assert not violations, report(violations)


def test_operators_import_listing_client_export_and_logpush_for_constants_only(code: Code) -> None:
    assert code.map.constants_only == {"listing", "client", "export", "logpush"}
    violations = operator_calls(code.imports, code.map)
    assert not violations, report(violations)


# ------------------------------------------------- the emulator and the runtime, as Python loads them


def test_emulator_never_imports_airflow() -> None:
    code = (
        "import sys, airflow_provider_aigw.emulator, airflow_provider_aigw.emulator.pytest_plugin;"
        "import airflow_provider_aigw.emulator.__main__;"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_the_runtime_never_imports_the_emulator() -> None:
    package = ROOT / PACKAGE
    runtime = [p for p in package.rglob("*.py") if "emulator" not in p.relative_to(package).parts]
    importers = [
        str(p.relative_to(package))
        for p in runtime
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and any("emulator" in (name or "") for name in [getattr(node, "module", None), *(a.name for a in node.names)])
    ]
    assert importers == []
    modules = sorted(
        ".".join(p.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__") for p in runtime
    )
    code = (
        "import importlib, sys, json;"
        f"[importlib.import_module(m) for m in {modules!r} if not m.endswith('__main__')];"
        "print(json.dumps(sorted(m for m in sys.modules if 'emulator' in m)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout) == []
    assert len(modules) > 20



# -------------------------------------------------------------- the checker on a known package

TOY_MAP = """
The module map
--------------

.. list-table::
   :header-rows: 1

   * - Module
     - Owns
     - Imports
   * - ``a``
     - A.
     - ``b``
   * - ``b``
     - B, whose
       import list goes on.
     - ``a``,
       ``_hidden``
   * - ``c``
     - C.
     - ``a``, ``b``, ``_hidden``
   * - ``d``
     - D.
     -
   * - ``_hidden``
     - Private.
     -
   * - ``sub``
     - A package.
     - ``sub``
   * - ``operators.x``
     - An operator.
     - ``client``
   * - ``client``
     - A client.
     -
   * - ``gone``
     - Moved away.
     - ``nowhere``

Operators may import ``client`` for constants only.
"""

TOY_PACKAGE = {
    "__init__.py": "__version__ = '1'\n",
    "a.py": "from toy.b import thing\n",
    "b.py": "from toy import __version__\nthing = 1\n\ndef f():\n    from toy.a import thing\n",
    "c.py": "from toy._hidden import y\nfrom toy.a import _z, thing\n\n__all__ = ['thing']\n",
    "d.py": "from toy.c import thing\n",
    "_hidden.py": "y = 1\n",
    "stray.py": "",
    "sub/__init__.py": "from ._impl import w\nfrom toy.sub import _impl\n",
    "sub/_impl.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    import toy._hidden\nw = 1\n",
    "client.py": "LIMIT = 50\n\ndef call():\n    pass\n",
    "operators/__init__.py": "",
    "operators/x.py": "from toy.client import LIMIT, call\nfrom toy import client\n",
}


def test_the_checker_finds_each_kind_of_violation(tmp_path: Path) -> None:
    for relative, source in TOY_PACKAGE.items():
        (tmp_path / "toy" / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "toy" / relative).write_text(source)
    modules = load_modules(tmp_path / "toy")
    imports = provider_imports(modules, package="toy")
    rules = parse_map(TOY_MAP)
    assert rules.rows["b"] == {"a", "_hidden"} and rules.rows["d"] == frozenset()
    assert rules.constants_only == {"client"}

    assert outside_the_rows(modules, imports, rules.rows) == [
        "d:1 imports c (outside row d)",
        "sub._impl:4 imports _hidden (outside row sub)",
    ]
    assert circles(imports) == ["circle a / b: a:1 -> b; b:5 -> a"]
    assert private_imports(modules, imports) == [
        "c:1 imports private module _hidden",
        "c:2 imports private name _z from a",
        "sub._impl:4 imports private module _hidden",
    ]
    assert re_exports(modules, imports) == [
        "c re-exports thing (from a) in __all__",
        "b:5 imports thing from a, which re-exports it from b",
        "c:2 imports thing from a, which re-exports it from b",
        "d:1 imports thing from c, which re-exports it from a",
    ]
    assert off_the_map(modules, rules.rows) == [
        "stray is not on the map",
        "the map names gone, which is no module",
        "the map names nowhere, which is no module",
    ]
    assert operator_calls(imports, rules) == [
        "operators.x:1 imports call from client (constants only)",
        "operators.x:2 imports the module itself from client (constants only)",
    ]

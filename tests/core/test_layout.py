"""The code's shape, checked: no import cycles, imports one way (views → services/selectors → models), no
module over 500 lines, and the Chamelaion client free of Django."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("submissions", "dubdash")
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules this one imports, wherever the import statement sits (a function-level import
    is still a dependency)."""
    imported = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # `from package import module` imports the module; `from module import name` the module.
            targets = [f"{module}.{alias.name}" for alias in node.names] + [module]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                imported.add(target)
    return imported


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(name, path, known) for name, path in modules.items()}
    # A package's __init__ importing its own submodules (to register them) is not a dependency cycle.
    for name, targets in graph.items():
        graph[name] = {target for target in targets if not target.startswith(name + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back():
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles:\n" + "\n".join(" ↔ ".join(group) for group in cycles)


def _layer(name: str) -> int | None:
    """views (and what serves pages: urls, admin, commands) = 3, forms = 2, services and selectors = 1,
    models = 0. Other modules (core helpers, the client) sit outside the layering."""
    last = name.rsplit(".", 1)[-1]
    if last in ("views", "urls") or last.endswith("_views") or ".admin" in name or ".management." in name:
        return 3
    if last == "forms" or last.endswith("_forms"):
        return 2
    if last in ("services", "selectors") or last.endswith(("_services", "_selectors")):
        return 1
    if name == "submissions.models":
        return 0
    return None


def _backwards(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a lower layer to a higher one (a service importing a view, say)."""
    backwards = []
    for name, targets in graph.items():
        layer = _layer(name)
        if layer is None:
            continue
        for target in targets:
            target_layer = _layer(target)
            if target_layer is not None and target_layer > layer:
                backwards.append(f"{name} (layer {layer}) imports {target} (layer {target_layer})")
    return backwards


def test_imports_run_one_way_from_views_to_services_to_models():
    assert _backwards(_graph()) == []


def test_no_module_is_over_500_lines():
    long = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    over = {name: lines for name, lines in long.items() if lines > MAX_LINES}
    assert over == {}


def test_the_layering_check_can_fail():
    assert _layer("submissions.jobs.views") > _layer("submissions.jobs.services") > _layer("submissions.models")
    assert _backwards({"submissions.models": {"submissions.jobs.views"}, "submissions.jobs.views": set()}) != []
    assert _backwards({"submissions.jobs.views": {"submissions.models"}, "submissions.models": set()}) == []


def _modules_loaded_by(setup: str, *, prefix: str) -> list[str]:
    """The modules named `prefix` or below it that a fresh interpreter has loaded after running `setup`."""
    script = (
        f"import sys\n{setup}\n"
        f"print(','.join(sorted(n for n in sys.modules if n == {prefix!r} or n.startswith({prefix!r} + '.'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return [name for name in result.stdout.strip().split(",") if name]


def test_the_chamelaion_client_imports_nothing_from_django():
    every_module = (
        "import pkgutil, importlib\n"
        "import submissions.chamelaion as package\n"
        "for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "    importlib.import_module(module.name)"
    )
    assert _modules_loaded_by(every_module, prefix="django") == []


def test_the_web_code_never_loads_the_simulator():
    """Every web process imports the urls and the apps; none of that may pull in the sandbox."""
    web_process = (
        "import os, django\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'tests.settings')\n"
        "django.setup()\n"
        "import dubdash.urls, submissions.admin\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns"
    )
    assert _modules_loaded_by(web_process, prefix="submissions.sandbox") == []


def test_the_loaded_modules_check_can_fail():
    assert "submissions.sandbox" in _modules_loaded_by("import submissions.sandbox", prefix="submissions.sandbox")


def test_the_client_and_the_sandbox_agree_on_the_demo_token():
    from submissions.apikey.clients import SANDBOX_TOKEN
    from submissions.sandbox import DEMO_TOKEN

    assert SANDBOX_TOKEN == DEMO_TOKEN

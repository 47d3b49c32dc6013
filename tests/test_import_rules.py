"""The rules of the house that imports can show (docs/architecture.md, "Rules of the house").

The module graph is read with `ast` from every file under provision/ (imports inside functions
count: a lazy import is still a dependency). `provision/settings.py` and a package
`provision/settings/` are one node, "provision.settings", so the rules hold across issue 21's
split of the settings into a package.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

# Every test here reads provision/ as text (`ast`): under mutmut that is its copy, whose mutated
# modules are many times larger; parsing them under mutmut's tracing outran the 60 s timeout
# and failed the stats pass. A mutant cannot be killed by an import rule anyway.
pytestmark = pytest.mark.source_text

PACKAGE = Path(__file__).resolve().parent.parent / "provision"
SETTINGS = "provision.settings"

# The layers that may use stack/ (the `provision up` steps): the workflows built on its steps and
# the Click layer. Everything else is below stack/ and must not import it.
ABOVE_STACK = {"stack", "ops", "swarm", "load", "commands", "cli", "__main__"}
# What the runtime adapters may import: nothing that knows of settings, steps or deployments.
RUNTIME_MAY_IMPORT = {"runtime", "errors", "masking", "envfile", "secrets", "fileio"}
# Literals naming a compose file of the deployment: bound to a name only in deployment.py.
COMPOSE_FILES = {"compose.yml", "compose.part.yml", "compose.metrics.yml"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    name = ".".join(parts)
    return SETTINGS if name.startswith(SETTINGS + ".") else name


def _imported(module: str, path: Path, node: ast.AST) -> list[str]:
    """The provision modules one import statement names (`from pkg import mod` names mod)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = package[: len(package) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    return [f"{source}.{alias.name}" for alias in node.names] + [source]


@cache
def graph() -> dict[str, frozenset[str]]:
    """module -> the provision modules it imports (settings collapsed to one node)."""
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for path in paths:
        module = module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = _imported(module, path, node)
            # `from a.b import c`: the module a.b.c when it is one, else a.b itself.
            if isinstance(node, ast.ImportFrom):
                *members, source = names
                targets = [m for m in members if m in modules] or [source]
            else:
                targets = names
            for target in targets:
                target = SETTINGS if target.startswith(SETTINGS + ".") else target
                if target in modules and target != module:
                    edges[module].add(target)
    return {name: frozenset(targets) for name, targets in edges.items()}


def layer(module: str) -> str:
    """`provision.stack.start` -> "stack"; `provision.cli` -> "cli"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def circles(edges: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_every_module():
    edges = graph()
    assert {"provision.cli", "provision.deployment", "provision.runtime.compose"} <= set(edges)
    assert "provision.runtime.compose" in edges["provision.deployment"]
    assert SETTINGS in edges["provision.render"]


def test_circles_are_found():
    edges = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset()}
    assert circles(edges) == [["a", "b", "c"]]


def test_no_circle_at_all():
    """The whole package, the settings included (their last circle, secrets <-> settings over
    the URL password helpers, went when those moved to the leaf `provision.masking`)."""
    assert circles(graph()) == []


def test_nothing_below_stack_imports_stack():
    wrong = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        for target in targets
        if layer(name) not in ABOVE_STACK and layer(target) == "stack"
    ]
    assert wrong == []


def test_commands_never_import_each_other_and_nothing_imports_a_command():
    shared = "provision.commands.options"
    wrong = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        for target in targets
        if layer(target) == "commands"
        and target not in (shared, "provision.commands")
        and layer(name) != "cli"
    ]
    assert wrong == []


def test_the_runtime_adapters_import_nothing_above_them():
    wrong = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        if layer(name) == "runtime"
        for target in targets
        if layer(target) not in RUNTIME_MAY_IMPORT
    ]
    assert wrong == []


def test_the_step_contract_and_the_deployment_know_nothing_of_the_steps():
    wrong = [
        f"{name} -> {target}"
        for name in ("provision.steps", "provision.deployment")
        for target in graph()[name]
        if layer(target) in ABOVE_STACK | {"render"}
    ]
    assert wrong == []


def test_only_the_runtime_runs_subprocesses():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if layer(module) == "runtime":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = [alias.name for alias in node.names]
            if "subprocess" in names or getattr(node, "module", None) == "subprocess":
                wrong.append(module)
    assert wrong == []


def settings_imports_above() -> list[str]:
    """What the settings (and limits) import from the API, provisioning or render."""
    return sorted(
        target
        for name, targets in graph().items()
        if name in (SETTINGS, "provision.limits")
        for target in targets
        if layer(target) in {"api", "render", "provisioning"}
    )


def test_settings_never_import_the_api_provisioning_or_render():
    assert settings_imports_above() == []


def test_only_the_deployment_names_the_compose_files():
    """Which compose files apply is decided in provision/deployment.py alone: no other module
    binds a name to one of their names (a second list would drift from the first)."""
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "deployment.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = getattr(node, "value", None)
            if (
                isinstance(node, ast.Assign | ast.AnnAssign)
                and isinstance(value, ast.Constant)
                and value.value in COMPOSE_FILES
            ):
                wrong.append(f"{module_name(path)}:{node.lineno}")
    assert wrong == []


def test_every_command_starts_from_the_deployment():
    """A command loads its settings through `provision.deployment` (`Deployment.load`, or the
    deployment's `load_settings`), never `provision.settings.load_settings` itself: one place
    decides how a deployment directory becomes settings."""
    wrong = []
    for path in sorted((PACKAGE / "commands").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith("provision.settings")
                and any(alias.name == "load_settings" for alias in node.names)
            ):
                wrong.append(f"{path.name}:{node.lineno}")
    assert wrong == []

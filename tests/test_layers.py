"""Nothing imports upward: the layout shows the architecture (issue 17).

Run-time imports only (a type named under ``if TYPE_CHECKING:`` costs
nothing at run time). Upper layers may use everything below them; a lower
module that imports an upper one drags its extras in (the Prometheus bridge
once needed the ``ops`` extra's YAML through the rules module).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "wedsync_otel"

UPPER: dict[str, frozenset[str]] = {
    "wedsync_otel.ops": frozenset({"wedsync_otel.ops", "wedsync_otel.cli", "wedsync_otel.demo"}),
    "wedsync_otel.cli": frozenset({"wedsync_otel.cli"}),
    "wedsync_otel.demo": frozenset({"wedsync_otel.demo", "wedsync_otel.cli"}),
}
"""An upper package -> the packages allowed to import it."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST) -> Iterator[str]:
    """Modules imported outside ``if TYPE_CHECKING:`` blocks."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _imports() -> Iterator[tuple[str, str]]:
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        for imported in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            yield module, imported


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def test_upper_packages_are_imported_only_from_above() -> None:
    """ops, cli and demo are imported only by themselves and the layers above them."""
    upward = sorted(
        f"{module} imports {imported}"
        for module, imported in _imports()
        for package, allowed in UPPER.items()
        if _within(imported, package) and not any(_within(module, above) for above in allowed)
    )
    assert upward == []


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("wedsync_otel.cache", "opentelemetry.instrumentation"),
        ("wedsync_otel.cache", "wedsync_otel.instrumentation"),
        ("wedsync_otel.metrics", "yaml"),
        ("wedsync_otel.privacy", "opentelemetry"),
    ],
)
def test_a_module_needs_no_package_it_does_not_use(module: str, forbidden: str) -> None:
    """The cache needs no contrib instrumentation, metrics no YAML, privacy no OpenTelemetry."""
    found = sorted(
        f"{importer} imports {imported}"
        for importer, imported in _imports()
        if _within(importer, module) and _within(imported, forbidden)
    )
    assert found == []


def test_only_the_sdk_module_touches_private_state() -> None:
    """Every private-member access (ruff's SLF001) in the package is in `wedsync_otel._sdk`."""
    found = sorted(
        f"{path.relative_to(SRC)}:{number}"
        for path in SRC.rglob("*.py")
        if path.name != "_sdk.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "SLF001" in line
    )
    assert found == []

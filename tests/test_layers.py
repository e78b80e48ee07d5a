"""The dependency rules of DESIGN.md: the core is free of the database, bingeo never imports the
API or its web framework."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bingeo"
# The layers that drive the database; everything else under bingeo/ is the pure core.
DATABASE_LAYERS = ("db", "services", "readmodels", "cli")
DATABASE_MODULES = (
    "sqlalchemy",
    "geoalchemy2",
    "psycopg",
    "alembic",
    "bingeo.db",
    "bingeo.services",
)
FRAMEWORK_MODULES = ("api", "fastapi", "starlette")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _under(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def _modules() -> list[tuple[str, Path]]:
    return [
        (path.relative_to(PACKAGE).parts[0].removesuffix(".py"), path)
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.parts
    ]


def test_the_core_imports_no_database_layer() -> None:
    core = [(top, path) for top, path in _modules() if top not in DATABASE_LAYERS]
    assert len(core) > 10  # the rule looked at the core's modules
    offending = {
        str(path.relative_to(PACKAGE)): sorted(
            n for n in _imports(path) if _under(n, DATABASE_MODULES)
        )
        for _, path in core
    }
    assert {k: v for k, v in offending.items() if v} == {}


def test_nothing_under_bingeo_imports_the_api() -> None:
    modules = _modules()
    assert any(top == "cli" for top, _ in modules)
    offending = {
        str(path.relative_to(PACKAGE)): sorted(
            n for n in _imports(path) if _under(n, FRAMEWORK_MODULES)
        )
        for _, path in modules
    }
    assert {k: v for k, v in offending.items() if v} == {}

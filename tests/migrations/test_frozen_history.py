"""Revisions are frozen history: none of them imports ``contextstore``.

A revision that imported the library's column types or dialect recipes would
change what it creates whenever those modules change, so a database migrated
today and one migrated last year would differ at the same revision. Each
revision spells out its types and DDL instead (SQLAlchemy, alembic and the
standard library only).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations

pytestmark = pytest.mark.sqlite

VERSIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"
FORBIDDEN = "contextstore"
#: callables that import a module named by their first argument
_DYNAMIC_IMPORTS = {"__import__", "import_module"}


def _forbidden(module: str | None) -> bool:
    return module is not None and (module == FORBIDDEN or module.startswith(f"{FORBIDDEN}."))


def forbidden_imports(source: str, filename: str = "<revision>") -> list[str]:
    """Every import of ``contextstore`` in ``source``, anywhere in the tree.

    Covers ``import contextstore[.x]``, ``from contextstore[.x] import ...``
    at module level and inside functions, classes, ``if TYPE_CHECKING:`` and
    ``try:`` blocks, and ``importlib.import_module("contextstore...")`` or
    ``__import__("contextstore...")`` with a literal name.
    """
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found += [
                f"{filename}:{node.lineno}: import {alias.name}"
                for alias in node.names
                if _forbidden(alias.name)
            ]
        elif isinstance(node, ast.ImportFrom):
            # a relative import (level > 0) would resolve inside migrations/versions
            if node.level == 0 and _forbidden(node.module):
                found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            first = node.args[0]
            if (
                name in _DYNAMIC_IMPORTS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and _forbidden(first.value)
            ):
                found.append(f"{filename}:{node.lineno}: {name}({first.value!r})")
    return found


def revision_files() -> list[Path]:
    return sorted(VERSIONS.glob("*.py"))


def test_there_are_revisions_to_scan() -> None:
    names = [path.name for path in revision_files()]
    assert "0001_baseline.py" in names, f"no baseline among {names} in {VERSIONS}"


@pytest.mark.parametrize("path", revision_files(), ids=lambda path: path.name)
def test_revision_imports_nothing_from_contextstore(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8"), path.name) == []


@pytest.mark.parametrize(
    "source",
    [
        "import contextstore",
        "import contextstore._types as t",
        "import os, contextstore.schema",
        "from contextstore import schema",
        "from contextstore._dialects import dialect_for",
        "def upgrade():\n    from contextstore._types import UTCDateTime\n",
        "class T:\n    def f(self):\n        import contextstore\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import contextstore\n",
        "try:\n    from contextstore import x\nexcept ImportError:\n    pass\n",
        "import importlib\nimportlib.import_module('contextstore._dialects')\n",
        "__import__('contextstore')",
    ],
)
def test_the_scan_finds_an_import_wherever_it_is(source: str) -> None:
    assert len(forbidden_imports(source)) == 1


@pytest.mark.parametrize(
    "source",
    [
        "import sqlalchemy as sa\nfrom alembic import op\n",
        "import contextstore_extras",  # another distribution, not the library
        "from contextstorage import x",
        "from . import helpers",
        "x = 'contextstore._types'",  # a string is not an import
    ],
)
def test_the_scan_leaves_other_imports_alone(source: str) -> None:
    assert forbidden_imports(source) == []


def _load_without_contextstore(path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # None in sys.modules makes any import of that name raise ImportError
    for name in [name for name in sys.modules if _forbidden(name)]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, FORBIDDEN, None)
    spec = importlib.util.spec_from_file_location(f"_frozen_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: revisions that change the schema of some dialects only (the others: none);
#: every other revision must write DDL on every dialect
CHANGES_ONLY: dict[str, set[str]] = {"0003_json_fidelity.py": {"postgresql"}}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql", "mariadb"])
@pytest.mark.parametrize("path", revision_files(), ids=lambda path: path.name)
def test_revision_runs_with_contextstore_unimportable(
    path: Path, dialect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline (``--sql``) upgrade and downgrade of each revision, library blocked.

    Catches what a static scan cannot: a name the revision resolves at run time.
    """
    module = _load_without_contextstore(path, monkeypatch)
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name=dialect, opts={"as_sql": True, "output_buffer": buffer}
    )
    with Operations.context(context):
        module.upgrade()
        module.downgrade()
    ddl = "CREATE TABLE" in buffer.getvalue() or "ALTER TABLE" in buffer.getvalue()
    assert ddl == (dialect in CHANGES_ONLY.get(path.name, {dialect})), buffer.getvalue()

"""`db copy` / `db verify` on small data: every source kind, refusals, and detected tampering."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from contextstore import ConnectionManager, Settings, Store, _migrations
from contextstore._admin.cli import app
from contextstore._admin.datatools import copy_database, table_checksums, verify_databases
from contextstore.errors import ConflictError, ContextStoreError
from contextstore.schema import messages
from tests.datatools._data import (
    add_expired_memory,
    assert_same_rows,
    check_fresh_ids_and_search,
    populate,
    read_all,
    run,
    table_names,
)
from tests.datatools.conftest import FreshUrl

SECRET = "S3cret-pw-datatools"


def cli(*args: str) -> tuple[int, str, str]:
    """Run the command tree in-process; (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, result.stderr


async def downgrade(url: str, revision: str) -> None:
    db = ConnectionManager(Settings(database_url=url))
    try:
        await _migrations.downgrade(db, revision)
    finally:
        await db.dispose()


async def make_source(url: str, *, backend: str = "core", tag: str = "t") -> None:
    async with Store(Settings(database_url=url, backend=backend)) as store:
        await populate(store, tag=tag)
    await add_expired_memory(url, 3)


@pytest.mark.sqlite
@pytest.mark.legacy
@pytest.mark.parametrize(
    ("stamped", "dialect"),
    [
        pytest.param(True, "postgresql", marks=pytest.mark.postgresql, id="stamped-postgresql"),
        pytest.param(False, "mysql", marks=pytest.mark.mysql, id="unstamped-mysql"),
        pytest.param(False, "sqlite", id="unstamped-sqlite"),
    ],
)
def test_from_a_legacy_file(
    stamped: bool, dialect: str, tmp_path: Path, fresh_url: FreshUrl
) -> None:
    source_path = tmp_path / "legacy.db"
    source = f"sqlite+aiosqlite:///{source_path}"
    run(lambda: make_source(source, backend="legacy"))
    if not stamped:
        # what older legacy releases left behind: the baseline tables (no
        # search_text yet), no version table
        run(lambda: downgrade(source, "0001_baseline"))
        with sqlite3.connect(source_path) as raw:
            raw.execute("DROP TABLE contextstore_version")
    before = run(lambda: read_all(source))
    target = fresh_url(dialect)

    code, out, err = cli("db", "copy", source, target)
    assert code == 0, out + err
    assert "verified: row counts and checksums match" in out

    assert_same_rows(before, run(lambda: read_all(target)))
    # the source is read, never changed (not even stamped)
    assert ("contextstore_version" in run(lambda: table_names(source))) is stamped
    assert_same_rows(before, run(lambda: read_all(source)))
    run(lambda: check_fresh_ids_and_search(target))


@pytest.mark.postgresql
@pytest.mark.mysql
@pytest.mark.parametrize(("origin", "dialect"), [("postgresql", "mysql"), ("mysql", "postgresql")])
def test_between_servers(origin: str, dialect: str, fresh_url: FreshUrl) -> None:
    source, target = fresh_url(origin), fresh_url(dialect)
    run(lambda: make_source(source))
    before = run(lambda: read_all(source))

    report = run(
        lambda: copy_database(Settings(database_url=source), Settings(database_url=target))
    )

    assert report.ok
    assert report.written
    assert [check.table for check in report.tables] == list(before)
    assert [check.actual.rows for check in report.tables] == [len(r) for r in before.values()]
    assert_same_rows(before, run(lambda: read_all(target)))
    run(lambda: check_fresh_ids_and_search(target))


def test_refuses_a_non_empty_target_unless_forced(empty_url: str, tmp_path: Path) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path / 'source.db'}"
    run(lambda: make_source(source, tag="new"))
    run(lambda: make_source(empty_url, tag="old"))
    old = run(lambda: read_all(empty_url))

    code, out, err = cli("db", "copy", source, empty_url)
    assert code == 1
    assert "not empty" in err
    assert "--force" in err
    assert "Traceback" not in out + err
    assert_same_rows(old, run(lambda: read_all(empty_url)))

    with pytest.raises(ConflictError, match="not empty"):
        run(lambda: copy_database(Settings(database_url=source), Settings(database_url=empty_url)))
    assert_same_rows(old, run(lambda: read_all(empty_url)))

    code, out, err = cli("db", "copy", "--force", source, empty_url)
    assert code == 0, out + err
    assert_same_rows(run(lambda: read_all(source)), run(lambda: read_all(empty_url)))
    run(lambda: check_fresh_ids_and_search(empty_url))


@pytest.mark.sqlite
def test_an_empty_source_copies_nothing_but_the_schema(tmp_path: Path) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path / 'source.db'}"
    target = f"sqlite+aiosqlite:///{tmp_path / 'target.db'}"
    assert cli("db", "upgrade", "--database-url", source)[0] == 0

    code, out, err = cli("db", "copy", source, target)

    assert code == 0, out + err
    assert all(rows == [] for rows in run(lambda: read_all(target)).values())


@pytest.mark.postgresql
def test_tampering_is_detected(postgresql_empty_url: str, tmp_path: Path) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path / 'source.db'}"
    target = postgresql_empty_url
    run(lambda: make_source(source))
    assert cli("db", "copy", source, target)[0] == 0
    assert run(
        lambda: verify_databases(Settings(database_url=source), Settings(database_url=target))
    ).ok

    # the same row count, one timestamp a microsecond later
    async def tamper() -> None:
        db = ConnectionManager(Settings(database_url=target))
        try:
            row = await db.fetch_one(messages.select().order_by(messages.c.id.desc()).limit(1))
            assert row is not None
            await db.execute(
                update(messages)
                .where(messages.c.id == row["id"])
                .values(
                    timestamp=row["timestamp"].replace(
                        microsecond=(row["timestamp"].microsecond + 1) % 1_000_000
                    )
                )
            )
        finally:
            await db.dispose()

    run(tamper)
    report = run(
        lambda: verify_databases(Settings(database_url=source), Settings(database_url=target))
    )
    assert not report.ok
    assert [check.table for check in report.mismatches] == ["messages"]
    (check,) = report.mismatches
    assert check.expected.rows == check.actual.rows
    assert check.expected.sha256 != check.actual.sha256
    assert run(lambda: table_checksums(Settings(database_url=target)))["messages"] == check.actual

    code, out, err = cli("db", "verify", source, target)
    assert code == 1
    assert "MISMATCH" in out
    assert "mismatch: messages" in err


@pytest.mark.sqlite
def test_bad_urls_and_sources_exit_1_without_traceback(tmp_path: Path) -> None:
    target = f"sqlite+aiosqlite:///{tmp_path / 'target.db'}"
    missing = tmp_path / "missing.db"

    code, _, err = cli("db", "copy", f"sqlite+aiosqlite:///{missing}", target)
    assert code == 1
    assert "does not exist" in err
    assert not missing.exists()

    code, _, err = cli("db", "copy", f"oracle://u:{SECRET}@h/db", target)
    assert (code, "source:" in err, "unsupported scheme" in err) == (1, True, True)
    assert SECRET not in err

    no_schema = tmp_path / "plain.db"
    sqlite3.connect(no_schema).close()
    code, _, err = cli("db", "copy", f"sqlite+aiosqlite:///{no_schema}", target)
    assert code == 1
    assert "has no contextstore schema" in err

    code, _, err = cli("db", "copy", target, target)
    assert code == 1
    assert "same database" in err

    with pytest.raises(ContextStoreError, match="batch_size"):
        run(lambda: copy_database(Settings(database_url=target), Settings(), batch_size=0))


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_password_never_printed(scheme: str, tmp_path: Path) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path / 'source.db'}"
    run(lambda: make_source(source))
    closed = make_url(f"{scheme}://someone:{SECRET}@127.0.0.1:9/nowhere")
    text = closed.render_as_string(hide_password=False)

    for args in (("db", "copy", source, text), ("db", "copy", text, source)):
        code, out, err = cli(*args)
        assert code == 1
        assert SECRET not in out + err
        assert "error" in err


@pytest.mark.sqlite
def test_a_failed_verification_rolls_the_target_back(tmp_path: Path) -> None:
    """A target that changes rows as they arrive: the copy must not commit."""
    source = f"sqlite+aiosqlite:///{tmp_path / 'source.db'}"
    target_path = tmp_path / "target.db"
    target = f"sqlite+aiosqlite:///{target_path}"
    run(lambda: make_source(source))
    assert cli("db", "upgrade", "--database-url", target)[0] == 0
    with sqlite3.connect(target_path) as raw:
        raw.execute(
            "CREATE TRIGGER mangle AFTER INSERT ON audit_log BEGIN "
            "UPDATE audit_log SET action = 'mangled' WHERE id = new.id; END"
        )

    code, out, err = cli("db", "copy", source, target)

    assert code == 1
    assert "MISMATCH" in out
    assert "mismatch: audit_log" in err
    assert "nothing was written" in err
    assert all(rows == [] for rows in run(lambda: read_all(target)).values())

    report = run(
        lambda: copy_database(Settings(database_url=source), Settings(database_url=target))
    )
    assert not report.written
    assert [check.table for check in report.mismatches] == ["audit_log"]
    assert all(rows == [] for rows in run(lambda: read_all(target)).values())


def test_an_untranslated_driver_error_is_one_line_without_the_password(tmp_path: Path) -> None:
    # port -5 passes URL parsing and fails inside the socket layer (OverflowError)
    source = f"sqlite+aiosqlite:///{tmp_path / 'source.db'}"
    run(lambda: make_source(source))
    bad = f"mysql://someone:{SECRET}@127.0.0.1:-5/nowhere"

    code, out, err = cli("db", "copy", bad, source)

    assert code == 1
    assert err.startswith("error:")
    assert len(err.strip().splitlines()) == 1
    assert SECRET not in out + err


def _beside_a_service(path: Path) -> None:
    """A service's own table and Alembic history in the file, beside contextstore's."""
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE nc_tickets (id INTEGER PRIMARY KEY, title TEXT)")
        raw.execute("INSERT INTO nc_tickets VALUES (1, 'printer on fire')")
        raw.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        raw.execute("INSERT INTO alembic_version VALUES ('svc_0001')")
    raw.close()


@pytest.mark.sqlite
@pytest.mark.parametrize(
    "dialect",
    [
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def test_only_contextstore_tables_are_copied(
    dialect: str, tmp_path: Path, fresh_url: FreshUrl
) -> None:
    source_path = tmp_path / "shared.db"
    source = f"sqlite+aiosqlite:///{source_path}"
    run(lambda: make_source(source))
    _beside_a_service(source_path)
    before = run(lambda: read_all(source))
    target = fresh_url(dialect)

    code, out, err = cli("db", "copy", source, target)
    assert code == 0, out + err

    assert_same_rows(before, run(lambda: read_all(target)))
    names = run(lambda: table_names(target))
    assert "contextstore_version" in names
    assert not names & {"nc_tickets", "alembic_version"}
    # the source keeps the service's history and table untouched
    with sqlite3.connect(source_path) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [("svc_0001",)]
        assert raw.execute("SELECT title FROM nc_tickets").fetchall() == [("printer on fire",)]
    raw.close()


@pytest.mark.sqlite
def test_a_source_an_older_release_stamped_is_read_unchanged(
    tmp_path: Path, fresh_url: FreshUrl
) -> None:
    source_path = tmp_path / "old.db"
    source = f"sqlite+aiosqlite:///{source_path}"
    run(lambda: make_source(source))
    head = _migrations.head_revision()
    with sqlite3.connect(source_path) as raw:
        # where releases before contextstore_version recorded the revision
        raw.execute("DROP TABLE contextstore_version")
        raw.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        raw.execute("INSERT INTO alembic_version VALUES (?)", (head,))
    raw.close()
    before = run(lambda: read_all(source))
    target = fresh_url("sqlite")

    code, out, err = cli("db", "copy", source, target)
    assert code == 0, out + err
    assert f"(schema {head})" in out  # read from where that release recorded it

    assert_same_rows(before, run(lambda: read_all(target)))
    assert "alembic_version" not in run(lambda: table_names(target))
    # the source is read, never changed: its stamp is where it was
    assert "contextstore_version" not in run(lambda: table_names(source))

"""`db backup` / `db restore`: round trips on every dialect and across, and bad files refused."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from contextstore import Settings, Store
from contextstore._admin.cli import app
from contextstore._admin.datatools import (
    DUMP_FORMAT,
    DUMP_FORMAT_VERSION,
    inspect_dump,
    restore,
    table_checksums,
)
from contextstore.errors import ConflictError, ValidationError
from tests.datatools._data import (
    BIG_INT,
    BIG_VALUE,
    UNICODE,
    add_expired_memory,
    assert_same_rows,
    check_fresh_ids_and_search,
    populate,
    read_all,
    run,
    table_names,
)
from tests.datatools.conftest import FreshUrl

HEAD = "0002"
SECRET = "S3cret-pw-backup"


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, result.stderr


async def make_source(url: str, tag: str = "t") -> None:
    async with Store(Settings(database_url=url)) as store:
        await populate(store, tag=tag)
    await add_expired_memory(url, 3)


def lines_of(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as dump:
        return [json.loads(line) for line in dump]


def write_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as dump:
        for line in lines:
            dump.write(json.dumps(line, ensure_ascii=False) + "\n")


@pytest.fixture
def sqlite_source(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'source.db'}"
    run(lambda: make_source(url))
    return url


@pytest.fixture
def dump_file(sqlite_source: str, tmp_path: Path) -> Path:
    path = tmp_path / "good.csdump.gz"
    code, out, err = cli("db", "backup", str(path), "--database-url", sqlite_source)
    assert code == 0, out + err
    return path


def test_round_trip_on_each_dialect(
    empty_url: str, dialect_name: str, fresh_url: FreshUrl, tmp_path: Path
) -> None:
    run(lambda: make_source(empty_url))
    before = run(lambda: read_all(empty_url))
    path = tmp_path / "round.csdump.gz"

    code, out, err = cli("db", "backup", str(path), "--database-url", empty_url)
    assert code == 0, out + err
    assert "verified: row counts and checksums match" in out
    target = fresh_url(dialect_name)
    code, out, err = cli("db", "restore", str(path), "--database-url", target)
    assert code == 0, out + err
    assert "verified: row counts and checksums match" in out

    after = run(lambda: read_all(target))
    assert_same_rows(before, after)
    # the awkward values, looked at directly as well
    values = {row["key"]: row["value"] for row in after["agent_memory"]}
    assert values["big-int"] == BIG_INT
    assert values["neg-big"] == -(2**63) - 7
    assert values["big"] == BIG_VALUE
    assert values["text"] == UNICODE
    assert values["null"] is None
    assert {"Key", "key", "key "} <= set(values)
    assert any(row["timestamp"].microsecond for row in after["messages"])
    assert any(row["parent_message_id"] is None for row in after["messages"])
    assert any(row["parent_message_id"] is not None for row in after["messages"])
    assert any(len(row["content"]) == 100_000 for row in after["messages"])
    run(lambda: check_fresh_ids_and_search(target))


@pytest.mark.sqlite
@pytest.mark.postgresql
def test_sqlite_to_postgresql_through_a_file(
    sqlite_source: str, dump_file: Path, postgresql_empty_url: str
) -> None:
    report = run(lambda: restore(Settings(database_url=postgresql_empty_url), dump_file))

    assert report.ok
    assert report.written
    assert report.revision == HEAD
    assert_same_rows(
        run(lambda: read_all(sqlite_source)), run(lambda: read_all(postgresql_empty_url))
    )
    assert run(lambda: table_checksums(Settings(database_url=postgresql_empty_url))) == run(
        lambda: table_checksums(Settings(database_url=sqlite_source))
    )
    run(lambda: check_fresh_ids_and_search(postgresql_empty_url))


@pytest.mark.sqlite
def test_file_layout(sqlite_source: str, dump_file: Path) -> None:
    lines = lines_of(dump_file)
    header, rows, trailer = lines[0], lines[1:-1], lines[-1]

    assert header["format"] == DUMP_FORMAT
    assert header["format_version"] == DUMP_FORMAT_VERSION
    assert header["schema_revision"] == HEAD
    assert header["dialect"] == "sqlite"
    assert header["contextstore_version"]
    assert header["created_at"].endswith("+00:00")
    assert "scope" not in header["tables"]["agent_memory"]  # generated, never dumped

    everything = run(lambda: read_all(sqlite_source))
    assert [line["table"] for line in rows] == [
        table for table, table_rows in everything.items() for _ in table_rows
    ]
    assert trailer["trailer"]["rows"] == {t: len(r) for t, r in everything.items()}
    digests = run(lambda: table_checksums(Settings(database_url=sqlite_source)))
    assert trailer["trailer"]["sha256"] == {t: d.sha256 for t, d in digests.items()}
    info = inspect_dump(dump_file)
    assert info.digests == digests


@pytest.mark.sqlite
def test_backup_refuses_to_overwrite_unless_forced(sqlite_source: str, dump_file: Path) -> None:
    before = dump_file.read_bytes()
    code, _, err = cli("db", "backup", str(dump_file), "--database-url", sqlite_source)
    assert code == 1
    assert "already exists" in err
    assert dump_file.read_bytes() == before

    code, out, err = cli("db", "backup", str(dump_file), "--database-url", sqlite_source, "--force")
    assert code == 0, out + err
    assert inspect_dump(dump_file).digests == run(
        lambda: table_checksums(Settings(database_url=sqlite_source))
    )
    assert not list(dump_file.parent.glob("*.partial"))


def test_restore_refuses_a_non_empty_target_unless_forced(
    dump_file: Path, sqlite_source: str, empty_url: str
) -> None:
    run(lambda: make_source(empty_url, tag="other"))
    old = run(lambda: read_all(empty_url))

    code, _, err = cli("db", "restore", str(dump_file), "--database-url", empty_url)
    assert code == 1
    assert "not empty" in err
    assert_same_rows(old, run(lambda: read_all(empty_url)))
    with pytest.raises(ConflictError):
        run(lambda: restore(Settings(database_url=empty_url), dump_file))

    code, out, err = cli("db", "restore", str(dump_file), "--database-url", empty_url, "--force")
    assert code == 0, out + err
    assert_same_rows(run(lambda: read_all(sqlite_source)), run(lambda: read_all(empty_url)))
    run(lambda: check_fresh_ids_and_search(empty_url))


def _truncated(good: Path, bad: Path) -> None:
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 2])


def _corrupted(good: Path, bad: Path) -> None:
    data = bytearray(good.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    bad.write_bytes(bytes(data))


def _not_gzip(good: Path, bad: Path) -> None:
    with gzip.open(good, "rb") as plain:
        bad.write_bytes(plain.read())


def _edit(change: Any) -> Any:
    def edit(good: Path, bad: Path) -> None:
        lines = lines_of(good)
        change(lines)
        write_lines(bad, lines)

    return edit


def _set_header(**values: Any) -> Any:
    return _edit(lambda lines: lines[0].update(values))


def _edit_a_message(lines: list[dict[str, Any]]) -> None:
    row = next(line for line in lines if line.get("table") == "messages")
    row["row"]["content"] += "!"


def _wrong_type(lines: list[dict[str, Any]]) -> None:
    row = next(line for line in lines if line.get("table") == "messages")
    row["row"]["timestamp"] = "yesterday"


def _out_of_order(lines: list[dict[str, Any]]) -> None:
    first_session = next(i for i, line in enumerate(lines) if line.get("table") == "sessions")
    moved = lines.pop(first_session)
    lines.insert(len(lines) - 1, moved)  # last before the trailer


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(_truncated, "damaged or truncated", id="truncated"),
        pytest.param(_corrupted, "damaged", id="corrupted"),
        pytest.param(_not_gzip, "not gzip-compressed", id="not-gzip"),
        pytest.param(_edit(lambda lines: lines.pop()), "no trailer", id="no-trailer"),
        pytest.param(
            _set_header(format_version=DUMP_FORMAT_VERSION + 1),
            f"format version {DUMP_FORMAT_VERSION + 1} is not supported",
            id="format-version",
        ),
        pytest.param(_set_header(format="other-tool"), "is not a contextstore-dump", id="format"),
        pytest.param(
            _set_header(schema_revision="0000_prehistoric"),
            "unknown schema revision '0000_prehistoric'",
            id="unknown-revision",
        ),
        pytest.param(_edit(_edit_a_message), "do not match the trailer", id="edited-row"),
        pytest.param(_edit(_wrong_type), "not an ISO 8601 time", id="wrong-type"),
        pytest.param(_edit(_out_of_order), "sessions rows after", id="out-of-order"),
        pytest.param(_edit(lambda lines: lines.append(lines[1])), "after the trailer", id="extra"),
    ],
)
def test_bad_files_are_refused_and_nothing_is_written(
    damage: Any, message: str, dump_file: Path, tmp_path: Path, empty_url: str
) -> None:
    bad = tmp_path / "bad.csdump.gz"
    damage(dump_file, bad)

    code, out, err = cli("db", "restore", str(bad), "--database-url", empty_url)

    assert code == 1
    assert message in err
    assert "Traceback" not in out + err
    assert run(lambda: table_names(empty_url)) == set()  # not even migrated
    with pytest.raises(ValidationError, match=r"bad\.csdump\.gz"):
        run(lambda: restore(Settings(database_url=empty_url), bad))
    assert run(lambda: table_names(empty_url)) == set()


@pytest.mark.sqlite
def test_unreadable_file(tmp_path: Path) -> None:
    target = f"sqlite+aiosqlite:///{tmp_path / 'target.db'}"
    code, _, err = cli("db", "restore", str(tmp_path / "nope.gz"), "--database-url", target)
    assert code == 1
    assert "cannot read" in err
    assert not (tmp_path / "target.db").exists()

    code, _, err = cli("db", "backup", str(tmp_path / "no" / "dir.gz"), "--database-url", target)
    assert code == 1


def test_backup_password_never_printed(tmp_path: Path) -> None:
    url = make_url(f"postgresql://someone:{SECRET}@127.0.0.1:9/nowhere")
    text = url.render_as_string(hide_password=False)
    for args in (("backup", str(tmp_path / "x.gz")), ("restore", str(tmp_path / "x.gz"))):
        code, out, err = cli("db", *args, "--database-url", text)
        assert code == 1
        assert SECRET not in out + err


@pytest.mark.sqlite
def test_a_failed_verification_rolls_the_restore_back(dump_file: Path, tmp_path: Path) -> None:
    target_path = tmp_path / "target.db"
    target = f"sqlite+aiosqlite:///{target_path}"
    assert cli("db", "upgrade", "--database-url", target)[0] == 0
    with sqlite3.connect(target_path) as raw:
        raw.execute(
            "CREATE TRIGGER mangle AFTER INSERT ON session_participants BEGIN "
            "UPDATE session_participants SET role = 'mangled' "
            "WHERE session_id = new.session_id AND agent_id = new.agent_id; END"
        )

    code, out, err = cli("db", "restore", str(dump_file), "--database-url", target)

    assert code == 1
    assert "MISMATCH" in out
    assert "mismatch: session_participants" in err
    assert "nothing was written" in err
    assert all(rows == [] for rows in run(lambda: read_all(target)).values())


@pytest.mark.sqlite
def test_uses_the_configured_database(
    sqlite_source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.csdump.gz"
    monkeypatch.setenv("CONTEXTSTORE_DATABASE_URL", sqlite_source)
    code, out, err = cli("db", "backup", str(path))
    assert code == 0, out + err
    assert sqlite_source in out

    target = f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}"
    monkeypatch.setenv("CONTEXTSTORE_DATABASE_URL", target)
    code, out, err = cli("db", "restore", str(path))
    assert code == 0, out + err
    assert_same_rows(run(lambda: read_all(sqlite_source)), run(lambda: read_all(target)))

"""``--json`` on every command: one document on stdout, the same facts as the text.

Each command runs twice, once for its text and once with ``--json`` (on two
databases in the same state where the command changes its database), and the
facts the text prints are read back from it and compared with the document.
Failures are documents too (``"ok": false`` and ``"error"``, the message the
text run prints on stderr), and a command that needs the schema says how to
get it.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from contextstore import Settings, Store
from contextstore._admin.cli import app
from tests.datatools._data import add_expired_memory

HEAD = "0003_json_fidelity"
TABLES = ["sessions", "messages", "agent_memory", "audit_log", "session_participants"]
ROW = re.compile(r"^\s+(\w+)\s+(\d+) rows\s+sha256 ([0-9a-f]{16})\s+(ok|MISMATCH)$", re.MULTILINE)


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def text(*args: str, code: int = 0) -> str:
    result = invoke(*args)
    assert result.exit_code == code, result.output
    return result.stdout


def document(*args: str, code: int = 0) -> dict[str, Any]:
    """Run with ``--json``: the exit code, and stdout is exactly one JSON document."""
    result = invoke(*args, "--json")
    assert result.exit_code == code, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    assert found["ok"] is (code == 0)
    if code:
        assert found["error"]
        assert found["error"] in " ".join(result.stderr.split()), result.stderr
    return found


def failure(*args: str) -> tuple[str, dict[str, Any]]:
    """The text run's stderr and the ``--json`` run's document of a reported failure."""
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return " ".join(result.stderr.split()), document(*args, code=1)


def run(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(work())


async def populate(url: str, *, expired: int = 0) -> None:
    async with Store(Settings(database_url=url)) as store:
        session = await store.sessions.create(purpose="json", created_by="alice")
        await store.participants.join(session.id, "alice")
        await store.messages.add(session.id, sender="alice", content="hello from the json test")
        await store.memory.set("alice", "kept", {"v": 1})
    if expired:
        await add_expired_memory(url, expired)


def table_rows(output: str) -> dict[str, tuple[int, str, bool]]:
    """The per-table lines of a data tool's text: rows, sha256 prefix, ok."""
    return {
        name: (int(rows), digest, mark == "ok") for name, rows, digest, mark in ROW.findall(output)
    }


def report_rows(report: dict[str, Any]) -> dict[str, tuple[int, str, bool]]:
    return {
        table["table"]: (table["actual"]["rows"], table["actual"]["sha256"][:16], table["ok"])
        for table in report["tables"]
    }


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Callable[[str], str]:
    return lambda name: f"sqlite+aiosqlite:///{tmp_path / name}"


# -- migrations --------------------------------------------------------------


def test_migration_commands(empty_url: str) -> None:
    safe = Settings(database_url=empty_url).safe_url

    out = text("db", "current", "--database-url", empty_url)
    now = document("db", "current", "--database-url", empty_url)
    assert out.strip() == f"{safe}: schema at revision none (newest is {HEAD})"
    assert (now["url"], now["revision"], now["head"], now["newest"]) == (safe, None, HEAD, False)

    out = text("db", "upgrade", "--database-url", empty_url)
    up = document("db", "upgrade", "--database-url", empty_url)  # already there: a no-op
    assert out.strip() == f"{safe}: schema at revision {HEAD}"
    assert (up["url"], up["revision"]) == (safe, HEAD)

    out = text("db", "current", "--database-url", empty_url)
    now = document("db", "current", "--database-url", empty_url)
    assert out.strip().endswith(f"revision {HEAD} (newest)")
    assert (now["revision"], now["newest"]) == (HEAD, True)

    out = text("db", "check", "--database-url", empty_url)
    check = document("db", "check", "--database-url", empty_url)
    assert out.strip() == f"{safe}: schema matches revision {HEAD}"
    assert (check["url"], check["head"], check["drift"]) == (safe, HEAD, [])

    out = text("db", "downgrade", "0002_search_text", "--database-url", empty_url)
    assert out.strip() == f"{safe}: schema at revision 0002_search_text"
    stderr, check = failure("db", "check", "--database-url", empty_url)
    drift = text("db", "check", "--database-url", empty_url, code=1)
    assert [line.removeprefix("  - ") for line in drift.splitlines()[1:]] == check["drift"]
    assert "contextstore db upgrade" in check["error"]
    assert check["error"] in stderr

    down = document("db", "downgrade", "base", "--database-url", empty_url)
    assert (down["url"], down["revision"]) == (safe, None)


# -- health and demo -----------------------------------------------------------


def test_health_is_one_document_with_and_without_json(sqlite_url: Callable[[str], str]) -> None:
    url = sqlite_url("health.db")
    plain = json.loads(text("health", "--database-url", url))
    report = document("health", "--database-url", url)
    assert plain.keys() == report.keys()
    assert (report["url"], report["schema_revision"], report["error"]) == (
        Settings(database_url=url).safe_url,
        None,
        None,
    )


def test_health_of_an_unreachable_database_is_a_failure_document(
    sqlite_url: Callable[[str], str], tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"
    report = json.loads(text("health", "--database-url", url, code=1))
    assert report["ok"] is False
    assert report["error"]


def test_demo(sqlite_url: Callable[[str], str]) -> None:
    small = ["--agents", "3", "--sessions", "2", "--messages", "5"]
    out = text("demo", "--database-url", sqlite_url("a.db"), *small)
    summary = document("demo", "--database-url", sqlite_url("b.db"), *small)
    rows = dict(re.findall(r"^│ ([a-z ()]+?)\s+│ (\S+)", out, re.MULTILINE))
    for label, field in [
        ("sessions", "sessions"),
        ("participants", "participants"),
        ("messages", "messages"),
        ("memory writes", "memory_writes"),
        ("feed pages", "feed_pages"),
        ("audit events", "audit_events"),
    ]:
        assert int(rows[label]) == summary[field], label
    assert rows["searches (hits)"] == str(summary["searches"])
    assert "health: ok" in out
    assert summary["health"]["ok"] is True


# -- memory ------------------------------------------------------------------


def test_purge_expired_counts_match(empty_url: str, sqlite_url: Callable[[str], str]) -> None:
    twin = sqlite_url("twin.db")
    run(lambda: populate(empty_url, expired=3))
    run(lambda: populate(twin, expired=3))

    out = text("memory", "purge-expired", "--database-url", twin)
    purged = document("memory", "purge-expired", "--database-url", empty_url)
    (count,) = re.findall(r"purged (\d+) expired memory entries", out)
    assert purged["purged"] == int(count) == 3
    assert (purged["url"], purged["backend"]) == (Settings(database_url=empty_url).safe_url, "core")
    assert document("memory", "purge-expired", "--database-url", empty_url)["purged"] == 0


@pytest.mark.parametrize("backend", ["core", "legacy"])
def test_purge_expired_without_schema_names_the_next_step(
    sqlite_url: Callable[[str], str], backend: str
) -> None:
    url = sqlite_url("bare.db")
    stderr, failed = failure("memory", "purge-expired", "--database-url", url, "--backend", backend)
    assert "has no contextstore schema" in failed["error"]
    assert "run 'contextstore db upgrade'" in failed["error"]
    assert "no such table" not in stderr
    assert failed["url"] == Settings(database_url=url).safe_url


def test_purge_expired_without_schema_on_every_dialect(empty_url: str) -> None:
    _stderr, failed = failure("memory", "purge-expired", "--database-url", empty_url)
    assert "has no contextstore schema" in failed["error"]
    assert "run 'contextstore db upgrade'" in failed["error"]


def test_purge_expired_on_an_old_schema_names_the_next_step(
    sqlite_url: Callable[[str], str],
) -> None:
    url = sqlite_url("old.db")
    text("db", "upgrade", "0001_baseline", "--database-url", url)
    # the baseline has agent_memory: purging works, and the schema is left alone
    assert document("memory", "purge-expired", "--database-url", url)["purged"] == 0
    assert document("db", "current", "--database-url", url)["revision"] == "0001_baseline"


def test_demo_without_auto_migrate_names_the_next_step(
    sqlite_url: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTEXTSTORE_AUTO_MIGRATE", "false")
    _stderr, failed = failure("demo", "--database-url", sqlite_url("d.db"), "--messages", "1")
    assert "run 'contextstore db upgrade'" in failed["error"]


# -- data tools -----------------------------------------------------------------


def test_backup_restore_copy_verify(empty_url: str, sqlite_url: Callable[[str], str]) -> None:
    source = sqlite_url("source.db")
    run(lambda: populate(source, expired=2))
    dumps = Path(source.removeprefix("sqlite+aiosqlite:///")).parent

    out = text("db", "backup", str(dumps / "a.gz"), "--database-url", source)
    backed = document("db", "backup", str(dumps / "b.gz"), "--database-url", source)
    assert table_rows(out) == report_rows(backed)
    assert list(report_rows(backed)) == TABLES
    assert report_rows(backed)["agent_memory"][0] == 3
    assert f"backed up: {backed['source']} -> {dumps / 'a.gz'} (schema {HEAD})" in out

    restored_text = sqlite_url("restored.db")
    out = text("db", "restore", str(dumps / "a.gz"), "--database-url", restored_text)
    restored = document("db", "restore", str(dumps / "b.gz"), "--database-url", empty_url)
    assert table_rows(out) == report_rows(restored) == report_rows(backed)
    assert restored["target"] == Settings(database_url=empty_url).safe_url

    out = text("db", "verify", source, restored_text)
    verified = document("db", "verify", source, empty_url)
    assert table_rows(out) == report_rows(verified) == report_rows(backed)
    assert "verified: row counts and checksums match" in out

    copied_text = sqlite_url("copied.db")
    out = text("db", "copy", source, copied_text)
    copied = document("db", "copy", source, sqlite_url("copied-json.db"))
    assert table_rows(out) == report_rows(copied) == report_rows(backed)
    assert (copied["action"], copied["written"], copied["revision"]) == ("copy", True, HEAD)


def test_a_verification_mismatch_is_a_failure_document(sqlite_url: Callable[[str], str]) -> None:
    one, other = sqlite_url("one.db"), sqlite_url("other.db")
    run(lambda: populate(one))
    text("db", "copy", one, other)
    run(lambda: add_expired_memory(other, 1))
    out = text("db", "verify", one, other, code=1)
    stderr, failed = failure("db", "verify", one, other)
    assert table_rows(out) == report_rows(failed)
    assert [name for name, (_, _, ok) in table_rows(out).items() if not ok] == ["agent_memory"]
    assert failed["error"] == "verification failed: agent_memory differ"
    assert failed["error"] in stderr


def test_refusals_name_force(empty_url: str, sqlite_url: Callable[[str], str]) -> None:
    source = sqlite_url("source.db")
    run(lambda: populate(source))
    run(lambda: populate(empty_url))
    dump = Path(source.removeprefix("sqlite+aiosqlite:///")).parent / "taken.gz"
    dump.write_bytes(b"not mine")

    _stderr, failed = failure("db", "backup", str(dump), "--database-url", source)
    assert failed["error"].endswith(f"{dump} already exists; pass --force to overwrite it")
    assert dump.read_bytes() == b"not mine"

    _stderr, failed = failure("db", "copy", source, empty_url)
    assert "is not empty" in failed["error"]
    assert "pass --force to replace its rows" in failed["error"]

    document("db", "backup", str(dump), "--database-url", source, "--force")
    _stderr, failed = failure("db", "restore", str(dump), "--database-url", empty_url)
    assert "is not empty" in failed["error"]
    assert "pass --force to replace its rows" in failed["error"]


def test_backup_without_schema_names_the_next_step(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "bare.db").close()
    url = f"sqlite:///{tmp_path / 'bare.db'}"
    dump = tmp_path / "bare.gz"
    _stderr, failed = failure("db", "backup", str(dump), "--database-url", url)
    assert "has no contextstore schema" in failed["error"]
    assert "run 'contextstore db upgrade'" in failed["error"]
    assert not dump.exists()


# -- settings and usage ------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["health"],
        ["demo"],
        ["db", "upgrade"],
        ["db", "downgrade", "base"],
        ["db", "current"],
        ["db", "check"],
        ["db", "backup", "x.gz"],
        ["db", "restore", "x.gz"],
        ["memory", "purge-expired"],
    ],
    ids=" ".join,
)
def test_a_url_the_settings_refuse_exits_1_with_the_message(args: list[str]) -> None:
    bad = ["--database-url", "oracle://scott:tiger-pw@db/x"]
    result = invoke(*args, *bad)
    assert result.exit_code == 1
    assert "unsupported scheme 'oracle'" in result.stderr
    failed = document(*args, *bad, code=1)
    assert "unsupported scheme 'oracle'" in failed["error"]
    assert "tiger-pw" not in result.output + json.dumps(failed)


@pytest.mark.parametrize("args", [["db", "copy"], ["db", "verify"]], ids=" ".join)
def test_a_refused_url_names_its_role(args: list[str], sqlite_url: Callable[[str], str]) -> None:
    failed = document(*args, sqlite_url("a.db"), "oracle://db/x", code=1)
    assert failed["error"].startswith("target: database_url: unsupported scheme 'oracle'")


def test_usage_errors_exit_2_and_print_no_document() -> None:
    result = invoke("db", "current", "--json", "--no-such-option")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "No such option" in result.stderr


@pytest.mark.parametrize("group", [[], ["db"], ["memory"]], ids=lambda g: " ".join(g) or "root")
def test_a_group_without_a_command_prints_its_help_and_exits_2(group: list[str]) -> None:
    result = invoke(*group)
    assert result.exit_code == 2
    assert "Usage: contextstore" in result.output
    assert "Commands:" in result.output

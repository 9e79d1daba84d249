"""The CLI's common options: ``--database-url``, ``--json``, ``--version`` and the exit codes.

Every command that talks to one database takes ``--database-url`` (else
``CONTEXTSTORE_DATABASE_URL``) and ``--json`` (one JSON document on stdout);
``db copy`` and ``db verify`` take two URLs as arguments instead. Exit codes:
0 success, 1 a reported failure, 2 a usage error.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from contextstore._admin.cli import app

pytestmark = pytest.mark.sqlite

HEAD = "0002"
ONE_DATABASE = [
    ["health"],
    ["demo"],
    ["db", "upgrade"],
    ["db", "downgrade"],
    ["db", "current"],
    ["db", "check"],
    ["db", "backup"],
    ["db", "restore"],
    ["memory", "purge-expired"],
]
TWO_DATABASES = [["db", "copy"], ["db", "verify"]]


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def document(*args: str) -> dict[str, Any]:
    """Run a command with ``--json``: exit 0 and exactly one JSON document on stdout."""
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'options.db'}"


@pytest.fixture
def migrated_url(url: str) -> str:
    assert invoke("db", "upgrade", "--database-url", url).exit_code == 0
    return url


@pytest.mark.parametrize("command", ONE_DATABASE, ids=" ".join)
def test_one_database_commands_take_database_url_and_json(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "--database-url" in result.stdout
    assert "--json" in result.stdout


@pytest.mark.parametrize("command", TWO_DATABASES, ids=" ".join)
def test_two_database_commands_take_urls_as_arguments(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "--json" in result.stdout
    assert "--database-url" not in result.stdout
    assert invoke(*command, "--database-url", "sqlite:///x.db").exit_code == 2


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"contextstore {version('contextstore')}"


@pytest.mark.parametrize(
    "args",
    [
        ["--no-such-option"],
        ["health", "--no-such-option"],
        ["db", "current", "--no-such-option"],
        ["no-such-command"],
        ["demo", "--backend", "bogus"],
        ["memory", "purge-expired", "--backend", "bogus"],
        ["db", "downgrade"],  # the revision is required
    ],
    ids=" ".join,
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert invoke(*args).exit_code == 2


def test_health(url: str) -> None:
    result = invoke("health", "--database-url", url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True
    # always JSON: --json changes nothing
    report = document("health", "--database-url", url)
    assert report["ok"] is True
    assert report["url"] == "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")


def test_migration_commands(url: str) -> None:
    for args in (["db", "upgrade"], ["db", "current"], ["db", "check"]):
        result = invoke(*args, "--database-url", url)
        assert result.exit_code == 0, result.output
        assert f"revision {HEAD}" in result.stdout

    assert document("db", "upgrade", "--database-url", url)["revision"] == HEAD
    current = document("db", "current", "--database-url", url)
    assert (current["ok"], current["revision"], current["head"], current["newest"]) == (
        True,
        HEAD,
        HEAD,
        True,
    )
    check = document("db", "check", "--database-url", url)
    assert (check["ok"], check["head"], check["drift"]) == (True, HEAD, [])

    assert document("db", "downgrade", "base", "--database-url", url)["revision"] is None
    assert document("db", "current", "--database-url", url)["newest"] is False


def test_check_drift_is_a_json_failure(url: str) -> None:
    result = invoke("db", "check", "--database-url", url, "--json")
    assert result.exit_code == 1, result.output
    check = json.loads(result.stdout)
    assert check["ok"] is False
    assert check["drift"]


def test_memory_purge_expired(migrated_url: str) -> None:
    result = invoke("memory", "purge-expired", "--database-url", migrated_url)
    assert result.exit_code == 0, result.output
    assert "purged 0 expired memory entries" in result.stdout
    purged = document("memory", "purge-expired", "--database-url", migrated_url)
    assert (purged["ok"], purged["purged"], purged["backend"]) == (True, 0, "core")


def test_a_reported_failure_with_json_is_one_document(url: str) -> None:
    # no schema yet: purging fails, and says so on stdout as JSON too
    result = invoke("memory", "purge-expired", "--database-url", url, "--json")
    assert result.exit_code == 1
    failed = json.loads(result.stdout)
    assert failed["ok"] is False
    assert failed["error"]
    assert "error" in result.stderr


def test_backup_and_restore(migrated_url: str, tmp_path: Path) -> None:
    dump = tmp_path / "options.csdump.gz"
    result = invoke("db", "backup", str(dump), "--database-url", migrated_url)
    assert result.exit_code == 0, result.output
    assert "verified" in result.stdout
    assert dump.is_file()

    again = document("db", "backup", str(dump), "--database-url", migrated_url, "--force")
    assert (again["ok"], again["action"], again["written"]) == (True, "backup", True)
    assert [table["table"] for table in again["tables"]] == [
        "sessions",
        "messages",
        "agent_memory",
        "audit_log",
        "session_participants",
    ]

    target = f"sqlite:///{tmp_path / 'restored.db'}"
    result = invoke("db", "restore", str(dump), "--database-url", target)
    assert result.exit_code == 0, result.output
    assert "restored" in result.stdout
    restored = document("db", "restore", str(dump), "--database-url", target, "--force")
    assert (restored["ok"], restored["action"], restored["revision"]) == (True, "restore", HEAD)

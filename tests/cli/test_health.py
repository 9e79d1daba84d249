"""`contextstore health`: JSON on stdout, exit 0/1, never a password in the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contextstore._admin.cli import app

SENTINEL = "S3ntinel-pw"
CLOSED_PORT = 1


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def output_of(result: object) -> str:
    """Everything the command printed, stdout and stderr."""
    stdout = getattr(result, "stdout", "")
    try:
        stderr = getattr(result, "stderr", "")
    except ValueError:  # stderr not captured separately
        stderr = ""
    return f"{stdout}\n{stderr}"


def test_ok_on_a_fresh_sqlite_file(runner: CliRunner, sqlite_empty_url: str) -> None:
    result = runner.invoke(app, ["health", "--database-url", sqlite_empty_url])
    assert result.exit_code == 0, output_of(result)
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["error"] is None
    assert report["backend"] == "core"
    assert report["dialect"] == "sqlite"
    assert report["server_version"]
    assert report["pool"]["checked_out"] == 0
    assert report["url"] == sqlite_empty_url
    assert Path(sqlite_empty_url.removeprefix("sqlite+aiosqlite:///")).exists()


def test_url_from_the_environment(
    runner: CliRunner, sqlite_empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTEXTSTORE_DATABASE_URL", sqlite_empty_url)
    result = runner.invoke(app, ["health"])
    assert result.exit_code == 0, output_of(result)
    assert json.loads(result.stdout)["url"] == sqlite_empty_url


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_closed_port_exits_1_without_the_password(runner: CliRunner, scheme: str) -> None:
    url = f"{scheme}://agent:{SENTINEL}@127.0.0.1:{CLOSED_PORT}/contextstore"
    result = runner.invoke(app, ["health", "--database-url", url, "--timeout", "5"])
    assert result.exit_code == 1
    assert SENTINEL not in output_of(result)
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["error"]
    assert "agent:***@127.0.0.1" in report["url"]


def test_closed_port_from_the_environment(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "CONTEXTSTORE_DATABASE_URL", f"postgres://agent:{SENTINEL}@127.0.0.1:{CLOSED_PORT}/x"
    )
    result = runner.invoke(app, ["health"])
    assert result.exit_code == 1
    assert SENTINEL not in output_of(result)
    assert json.loads(result.stdout)["ok"] is False


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg2://agent:{SENTINEL}@127.0.0.1/x",
        f"oracle://agent:{SENTINEL}@127.0.0.1/x",
        f"postgresql://agent:{SENTINEL}@127.0.0.1:notaport/x",
    ],
)
def test_unusable_url_exits_1_without_the_password(runner: CliRunner, url: str) -> None:
    result = runner.invoke(app, ["health", "--database-url", url])
    assert result.exit_code == 1
    printed = output_of(result)
    assert "error" in printed
    assert SENTINEL not in printed


def test_real_process_exits_1_without_the_password(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTEXTSTORE_")}
    env["CONTEXTSTORE_DATABASE_URL"] = f"mysql://agent:{SENTINEL}@127.0.0.1:{CLOSED_PORT}/x"
    failing = subprocess.run(
        [sys.executable, "-m", "contextstore", "health", "--timeout", "5"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert failing.returncode == 1, failing.stderr
    assert SENTINEL not in failing.stdout + failing.stderr
    report = json.loads(failing.stdout)
    assert report["ok"] is False
    assert report["url"] == "mysql+aiomysql://agent:***@127.0.0.1:1/x"

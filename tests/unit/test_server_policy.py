"""The test harness itself: an unreachable server skips its tests with the reason,
or fails them under CONTEXTSTORE_REQUIRE_SERVERS=1.

Runs pytest in a subprocess on a tiny test file that uses the real
``tests/conftest.py`` (loaded as a plugin), with the PostgreSQL URL pointing at
a closed port.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SENTINEL = "S3ntinel-pw"
UNREACHABLE = f"postgresql://postgres:{SENTINEL}@127.0.0.1:1/postgres"

TINY_TEST = """
def test_needs_postgresql(postgresql_empty_url):
    raise AssertionError("must not run: the server is unreachable")
"""


def run_pytest(tmp_path: Path, *, require: bool) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "test_tiny.py"
    test_file.write_text(TINY_TEST, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTEXTSTORE_")}
    env["CONTEXTSTORE_TEST_POSTGRES_URL"] = UNREACHABLE
    if require:
        env["CONTEXTSTORE_REQUIRE_SERVERS"] = "1"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            f"--rootdir={REPO}",
            "-c",
            str(REPO / "pyproject.toml"),
            f"--basetemp={tmp_path / 'basetemp'}",
            "-rsE",
            "-q",
            str(test_file),
        ],
        cwd=REPO,  # so that `tests` is importable
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_unreachable_server_skips_with_the_reason(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, require=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 skipped" in output
    assert "postgresql server at postgresql://postgres:***@127.0.0.1:1/postgres unreachable" in (
        output
    )
    assert SENTINEL not in output


def test_unreachable_server_fails_when_servers_are_required(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, require=True)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 error" in output
    assert "skipped" not in output
    assert "CONTEXTSTORE_REQUIRE_SERVERS=1 but postgresql server at" in output
    assert "must not run" not in output
    assert SENTINEL not in output

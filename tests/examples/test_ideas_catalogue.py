"""examples/ideas_catalogue.py runs as a user would run it, on each dialect, and says
what it did: its output is checked line by line against what the data must give."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ideas_catalogue.py"

#: the example's data is fixed, so its output is too (ids start at 1 in a fresh database)
EXPECTED = [
    "imported 120 ideas, ids 1..120",
    "yt-0042 is 'Idea number 42' in tools",
    "upserted yt-0042: id 42 kept, title now 'The answer'",
    "best ops idea: yt-0118 (score 4)",
    "ops ideas scoring 4 or more: 20 in 2 keyset pages",
    "research page 2 of 3: 15 ideas, first yt-0044, has_next=True, has_prev=True",
    "per category: tools=39, ops=40, research=41",
    "reviewed yt-0042: score 5",
    "total ideas: 120",
]


def _run(database_url: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTEXTSTORE_")}
    if database_url is not None:
        env["CONTEXTSTORE_DATABASE_URL"] = database_url
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_example_runs_on_its_own_sqlite_file() -> None:
    assert _run(None) == EXPECTED


def test_the_example_runs_on_every_dialect(empty_url: str) -> None:
    assert _run(empty_url) == EXPECTED


@pytest.mark.sqlite
def test_a_second_run_on_the_same_database_starts_afresh(sqlite_empty_url: str) -> None:
    _run(sqlite_empty_url)
    second = _run(sqlite_empty_url)
    # the table is emptied, not dropped: SQLite reuses the ids, the rest is the same
    assert second[1:] == EXPECTED[1:]

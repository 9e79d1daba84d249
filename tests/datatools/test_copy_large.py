"""`db copy` of a 200,000-message SQLite database to PostgreSQL and to MariaDB.

The copy runs as its own process, whose peak RSS is read from ``wait4`` and
must stay under 200 MB (a memory bound, not a speed assertion); its duration
is printed for the record. The test then checks the result itself: row
counts, full checksums, a sample of messages record by record through the
public API, every row of the smaller tables, fresh ids after the copy, and
search on the target.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from contextstore import Settings, Store
from contextstore._admin.datatools import table_checksums
from contextstore.schema import messages
from tests.datatools._data import (
    ADMIN,
    assert_same_rows,
    check_fresh_ids_and_search,
    counts,
    read_all,
    run,
)
from tests.datatools.conftest import LARGE_MESSAGES

RSS_LIMIT_KB = 200 * 1024
SAMPLE = 400


#: Runs the command given after the result-file argument and writes its peak
#: RSS (KB) there. A process forked from pytest starts with pytest's pages
#: counted in its ru_maxrss (the kernel keeps the pre-exec high-water mark),
#: so the command is started from this small launcher instead.
LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_pid, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as result:
    result.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(args: list[str], cwd: Path) -> tuple[int, str, str, int, float]:
    """Run ``python -m contextstore ARGS``; return (exit code, stdout, stderr, peak RSS KB, s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTEXTSTORE_")}
    rss_path = cwd / "copy.rss"
    started = time.perf_counter()
    command = [sys.executable, "-m", "contextstore", *args]
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(rss_path), *command],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
        check=False,
    )
    seconds = time.perf_counter() - started
    return done.returncode, done.stdout, done.stderr, int(rss_path.read_text()), seconds


@pytest.fixture(scope="module")
def large_checksums(large_source: Path) -> dict[str, object]:
    url = f"sqlite+aiosqlite:///{large_source}"
    return {
        "digests": run(lambda: table_checksums(Settings(database_url=url))),
        "rows": run(lambda: read_all_without_messages(url)),
    }


async def read_all_without_messages(url: str) -> dict[str, list[dict[str, object]]]:
    """Every row of every table but messages (those are sampled)."""
    everything = await read_all(url)
    everything.pop("messages")
    return everything


@pytest.mark.parametrize(
    "dialect",
    [
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def test_copy_200k_messages(
    dialect: str,
    request: pytest.FixtureRequest,
    large_source: Path,
    large_checksums: dict[str, object],
    tmp_path: Path,
) -> None:
    target = request.getfixturevalue(f"{dialect}_empty_url")
    source = f"sqlite+aiosqlite:///{large_source}"

    code, out, err, rss_kb, seconds = run_measured(["db", "copy", source, target], tmp_path)
    print(
        f"\n[datatools] copy of {LARGE_MESSAGES} messages to {dialect}: "
        f"{seconds:.1f} s, peak RSS {rss_kb / 1024:.1f} MB"
    )
    assert code == 0, f"{out}\n{err}"
    assert "verified: row counts and checksums match" in out
    assert rss_kb < RSS_LIMIT_KB, f"peak RSS {rss_kb / 1024:.1f} MB"

    # counts and full checksums, computed here on both sides
    source_counts = run(lambda: counts(source))
    assert source_counts["messages"] == LARGE_MESSAGES - LARGE_MESSAGES // 997
    assert run(lambda: counts(target)) == source_counts
    assert (
        run(lambda: table_checksums(Settings(database_url=target))) == (large_checksums["digests"])
    )
    # every row of the smaller tables, record by record
    assert_same_rows(large_checksums["rows"], run(lambda: read_all_without_messages(target)))  # type: ignore[arg-type]

    # a sample of messages, record by record through the public API, ids kept
    async def sample() -> None:
        ids = random.Random(6).sample(range(1, LARGE_MESSAGES + 1), SAMPLE)
        async with (
            Store(Settings(database_url=source, auto_migrate=False)) as src,
            Store(Settings(database_url=target, auto_migrate=False)) as dst,
        ):
            found = 0
            for message_id in ids:
                want = await src.messages.get(message_id, viewer=ADMIN)
                have = await dst.messages.get(message_id, viewer=ADMIN)
                assert have == want
                found += want is not None
            assert found == SAMPLE - sum(1 for i in ids if i % 997 == 0)
            assert await dst.db.fetch_value(select(func.max(messages.c.id))) == (
                await src.db.fetch_value(select(func.max(messages.c.id)))
            )

    run(sample)
    run(lambda: check_fresh_ids_and_search(target, word="foxtrot"))

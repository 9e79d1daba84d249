"""FastAPI is an optional extra: ``import contextstore`` never loads it, and
``import contextstore.fastapi`` without it names the extra to install."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_contextstore_does_not_import_fastapi() -> None:
    done = _run(
        "import sys, contextstore\n"
        "async def main():\n"
        "    async with contextstore.Store(contextstore.Settings(database_url='sqlite://')) as s:\n"
        "        await s.health()\n"
        "import asyncio; asyncio.run(main())\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')"
        " or m == 'contextstore.fastapi')\n"
        "print(loaded)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_without_fastapi_the_import_error_names_the_extra() -> None:
    done = _run(
        "import sys\n"
        "sys.modules['fastapi'] = None  # as if it were not installed\n"
        "try:\n"
        "    import contextstore.fastapi\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "contextstore.fastapi needs FastAPI: pip install 'contextstore[fastapi]'"
    )

"""Scratch databases: a temporary SQLite file, or ``cs_bench_<pid>`` on a server."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/test"
_SERVER_ENV = {
    "postgresql": ("CONTEXTSTORE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
    "mysql": ("CONTEXTSTORE_TEST_MYSQL_URL", DEFAULT_MYSQL_URL),
}


class Scratch:
    """A dedicated database for one run: SQLite temp file, or ``cs_bench_<pid>`` on a server."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.name = f"cs_bench_{os.getpid()}"
        self.admin_url: URL | None = None
        self.url: URL | None = None
        self._tempdir: str | None = None
        self._created = False

    async def create(self) -> str | None:
        """Create it; return a reason to skip when the server cannot be reached."""
        from sqlalchemy.engine import make_url

        if self.dialect == "sqlite":
            self._tempdir = tempfile.mkdtemp(prefix="cs_bench_")
            self.url = make_url(f"sqlite+aiosqlite:///{Path(self._tempdir) / 'bench.db'}")
            return None
        env, default = _SERVER_ENV[self.dialect]
        admin = make_url(os.environ.get(env, default))
        if admin.get_backend_name() == "postgres":
            admin = admin.set(drivername="postgresql")
        self.admin_url = admin
        safe = admin.render_as_string(hide_password=True)
        try:
            await asyncio.wait_for(self._admin(f"DROP DATABASE IF EXISTS {self._quoted()}"), 10)
            await asyncio.wait_for(self._admin(f"CREATE DATABASE {self._quoted()}"), 10)
        except (OSError, TimeoutError) as exc:
            return f"{self.dialect} server at {safe} unreachable: {type(exc).__name__}: {exc}"
        except Exception as exc:
            # driver errors (authentication, permissions) also mean: cannot benchmark here
            return f"{self.dialect} server at {safe} not usable: {type(exc).__name__}: {exc}"
        self._created = True
        driver = {"postgresql": "postgresql+asyncpg", "mysql": "mysql+aiomysql"}[self.dialect]
        self.url = admin.set(drivername=driver, database=self.name)
        return None

    def _quoted(self) -> str:
        return f'"{self.name}"' if self.dialect == "postgresql" else f"`{self.name}`"

    async def _admin(self, sql: str) -> None:
        url = self.admin_url
        if url is None:
            raise RuntimeError("no server URL")
        conn = await connect_admin(self.dialect, url)
        try:
            if self.dialect == "postgresql":
                await conn.execute(sql)
            else:
                with warnings.catch_warnings():
                    # "Can't drop database ...; database doesn't exist" notes of IF EXISTS
                    warnings.simplefilter("ignore")
                    async with conn.cursor() as cursor:
                        await cursor.execute(sql)
        finally:
            if self.dialect == "postgresql":
                await conn.close()
            else:
                conn.close()

    async def drop(self) -> None:
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
        if self._created:
            self._created = False
            force = " WITH (FORCE)" if self.dialect == "postgresql" else ""
            await asyncio.wait_for(
                self._admin(f"DROP DATABASE IF EXISTS {self._quoted()}{force}"), 30
            )

    def store_url(self) -> str:
        if self.url is None:
            raise RuntimeError("scratch database not created")
        return self.url.render_as_string(hide_password=False)

    def safe_url(self) -> str:
        return "" if self.url is None else self.url.render_as_string(hide_password=True)


async def connect_admin(dialect: str, url: URL) -> Any:
    """A driver connection (asyncpg, or aiomysql in autocommit) to ``url``'s
    database on the server: the admin database of a scratch run. 5 s to connect."""
    if dialect == "postgresql":
        import asyncpg

        return await asyncpg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            database=url.database or "postgres",
            timeout=5,
        )
    import aiomysql

    return await aiomysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        connect_timeout=5,
        autocommit=True,
    )

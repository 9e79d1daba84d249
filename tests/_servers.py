"""Fresh databases on the test servers: one per test, created from a per-run prefix.

A server that cannot be reached makes its tests skip with the reason, or fail
when ``CONTEXTSTORE_REQUIRE_SERVERS=1``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field

import pytest
from sqlalchemy.engine import URL, make_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/test"
RUN_PREFIX = f"cs_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def require_servers() -> bool:
    return os.environ.get("CONTEXTSTORE_REQUIRE_SERVERS", "") in {"1", "true", "yes"}


@dataclass
class Server:
    """One test server: creates and drops databases named after this run."""

    dialect: str
    admin_url: URL
    error: str | None = None
    created: list[str] = field(default_factory=list)
    counter: int = 0

    @classmethod
    def from_env(cls, dialect: str) -> Server:
        env = {
            "postgresql": "CONTEXTSTORE_TEST_POSTGRES_URL",
            "mysql": "CONTEXTSTORE_TEST_MYSQL_URL",
        }
        default = {"postgresql": DEFAULT_POSTGRES_URL, "mysql": DEFAULT_MYSQL_URL}
        url = make_url(os.environ.get(env[dialect], default[dialect]))
        if url.get_backend_name() == "postgres":
            url = url.set(drivername="postgresql")
        server = cls(dialect=dialect, admin_url=url)
        server.error = server._probe()
        return server

    def _probe(self) -> str | None:
        try:
            self.execute("SELECT 1")
        except Exception as exc:
            return f"{self.dialect} server at {self.admin_url!r} unreachable: {exc}"
        return None

    def execute(self, sql: str) -> None:
        """Run admin SQL with the sync driver that ships with the async one."""
        if self.dialect == "postgresql":
            import asyncio
            import concurrent.futures

            import asyncpg

            async def run() -> None:
                conn = await asyncpg.connect(
                    host=self.admin_url.host,
                    port=self.admin_url.port or 5432,
                    user=self.admin_url.username,
                    password=self.admin_url.password,
                    database=self.admin_url.database or "postgres",
                    timeout=5,
                )
                try:
                    await conn.execute(sql)
                finally:
                    await conn.close()

            # a thread of its own: the caller may be inside a running loop
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, run()).result()
        else:
            import pymysql

            conn = pymysql.connect(
                host=self.admin_url.host or "127.0.0.1",
                port=self.admin_url.port or 3306,
                user=self.admin_url.username or "root",
                password=self.admin_url.password or "",
                connect_timeout=5,
            )
            try:
                with conn.cursor() as cursor:
                    cursor.execute(sql)
                conn.commit()
            finally:
                conn.close()

    def check(self) -> None:
        """Skip (or fail under REQUIRE) when the server is unreachable."""
        if self.error is None:
            return
        if require_servers():
            pytest.fail(f"CONTEXTSTORE_REQUIRE_SERVERS=1 but {self.error}", pytrace=False)
        pytest.skip(self.error)

    def create_database(self, template: str | None = None) -> str:
        """Create a fresh database and return its URL (async driver, as text)."""
        self.check()
        self.counter += 1
        name = f"{RUN_PREFIX}_{self.counter}"
        if self.dialect == "postgresql":
            suffix = f' TEMPLATE "{template}"' if template else ""
            self.execute(f'CREATE DATABASE "{name}"{suffix}')
        else:
            # the server default collation: the schema must not rely on the database default
            self.execute(f"CREATE DATABASE `{name}`")
        self.created.append(name)
        return self.url_for(name)

    def url_for(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        if self.dialect == "postgresql":
            self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            self.execute(f"DROP DATABASE IF EXISTS `{name}`")
        if name in self.created:
            self.created.remove(name)

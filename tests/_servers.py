"""Fresh databases on the test servers: one per test, created from a per-run prefix.

A test that needs contextstore's tables, not the migrations that make them,
asks for a migrated database (``Server.create_database(migrated=True)``): a copy
of one database migrated once per run and server, which costs a third of
migrating each test's database afresh. The migrations themselves keep their
own tests, on empty databases.

A server that cannot be reached makes its tests skip with the reason, or fail
when ``CONTEXTSTORE_REQUIRE_SERVERS=1``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.engine import URL, make_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/test"
RUN_PREFIX = f"cs_{os.getpid()}_{uuid.uuid4().hex[:6]}"
#: the environment variables of the tests themselves, kept for every test
TEST_VARIABLES = ("CONTEXTSTORE_TEST_", "CONTEXTSTORE_REQUIRE_SERVERS")


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
    #: the database migrated once, that ``create_database(migrated=True)`` copies
    template: str | None = None
    #: MySQL: the statements that rebuild the template's tables in another database
    schema: list[str] | None = None

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
            conn = self._mysql_connect()
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

    def create_database(self, template: str | None = None, *, migrated: bool = False) -> str:
        """Create a fresh database and return its URL (async driver, as text).

        ``migrated``: at contextstore's newest schema, a copy of a database
        migrated once (PostgreSQL copies it with ``CREATE DATABASE ...
        TEMPLATE``; MySQL has no such statement: the template's tables are
        created again from their ``SHOW CREATE TABLE``, as ``mysqldump`` does,
        and the rows it holds, the version table's, copied).
        """
        self.check()
        if migrated:
            if self.template is None:
                url = self.create_database()
                migrate_database(url)
                self.template = make_url(url).database
                if self.dialect == "mysql":
                    self.schema = self._tables_of(self.template or "")
            if self.dialect == "postgresql":
                return self.create_database(template=self.template)
            url = self.create_database()
            assert self.schema is not None
            self._run_in(make_url(url).database or "", self.schema)
            return url
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

    def _tables_of(self, database: str) -> list[str]:
        """The statements that create ``database``'s tables, and copy the rows
        of those that hold any, in the current database of the connection
        that runs them."""
        conn = self._mysql_connect(database)
        try:
            with conn.cursor() as cursor:
                # only tables are copied: a migration that adds another kind of
                # object must teach this copy about it
                cursor.execute(
                    "SELECT (SELECT COUNT(*) FROM information_schema.triggers"
                    "        WHERE trigger_schema = DATABASE())"
                    "     + (SELECT COUNT(*) FROM information_schema.routines"
                    "        WHERE routine_schema = DATABASE())"
                    "     + (SELECT COUNT(*) FROM information_schema.events"
                    "        WHERE event_schema = DATABASE())"
                    "     + (SELECT COUNT(*) FROM information_schema.tables"
                    "        WHERE table_schema = DATABASE() AND table_type <> 'BASE TABLE')"
                )
                (others,) = cursor.fetchone() or (0,)
                assert others == 0, f"the migrated {database} holds more than tables"
                cursor.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
                tables = [row[0] for row in cursor.fetchall()]
                statements = ["SET foreign_key_checks = 0"]
                for table in tables:
                    cursor.execute(f"SHOW CREATE TABLE `{table}`")
                    statements.append(cursor.fetchone()[1])
                for table in tables:
                    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM `{table}`)")
                    if not cursor.fetchone()[0]:
                        continue
                    # a generated column takes no value of its own
                    cursor.execute(
                        "SELECT column_name FROM information_schema.columns"
                        " WHERE table_schema = DATABASE() AND table_name = %s"
                        " AND generation_expression IS NULL ORDER BY ordinal_position",
                        (table,),
                    )
                    columns = ", ".join(f"`{row[0]}`" for row in cursor.fetchall())
                    statements.append(
                        f"INSERT INTO `{table}` ({columns}) "
                        f"SELECT {columns} FROM `{database}`.`{table}`"
                    )
                return statements
        finally:
            conn.close()

    def _mysql_connect(self, database: str | None = None) -> Any:
        import pymysql

        return pymysql.connect(
            host=self.admin_url.host or "127.0.0.1",
            port=self.admin_url.port or 3306,
            user=self.admin_url.username or "root",
            password=self.admin_url.password or "",
            database=database,
            connect_timeout=5,
        )

    def _run_in(self, database: str, statements: list[str]) -> None:
        """Run MySQL ``statements`` in ``database``, one after the other (each
        DDL statement commits by itself), and commit."""
        conn = self._mysql_connect(database)
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
            conn.commit()
        finally:
            conn.close()

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


def migrate_database(url: str) -> None:
    """Bring the database at ``url`` to the newest schema, as a core Store opening
    it does, whatever the environment or a ``.env`` file says (a session
    fixture runs before the per-test environment cleanup)."""
    import asyncio
    import concurrent.futures

    from contextstore import Settings, Store

    # the settings the tests' own environment cleanup (tests/conftest.py) leaves
    hidden = {
        name: os.environ.pop(name)
        for name in list(os.environ)
        if name.startswith("CONTEXTSTORE_") and not name.startswith(TEST_VARIABLES)
    }
    try:
        settings = Settings(database_url=url, _env_file=None)
    finally:
        os.environ.update(hidden)

    async def run() -> None:
        async with Store(settings):
            pass

    # a thread of its own: the caller may be inside a running loop
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()

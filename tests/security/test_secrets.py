"""A password never shows: not in logs, reprs, exceptions, health reports or CLI output.

Each test puts a fresh sentinel password in the database URL, turns on
``echo_sql`` and DEBUG logging for the root logger, SQLAlchemy, the drivers
and contextstore, drives the failure (or the success) through the public API
and the command line, and then searches for the sentinel in:

* every log record (message, arguments and formatted traceback) and
  everything printed to stdout/stderr (SQLAlchemy's echo handler included);
* ``repr`` and ``str`` of Settings, its URL, Store, ConnectionManager, the
  engine, its URL and pool, and HealthReport;
* every exception raised, down the whole ``__cause__``/``__context__`` chain:
  ``str``, ``repr``, ``args``, attributes and the formatted traceback;
* the health report's error text and JSON;
* the output of ``contextstore health`` (URL from the environment and from
  ``--database-url``), ``contextstore db current`` and ``db copy``.

Cases: connection refused, a server that never answers, authentication
refused (MariaDB: wrong password; PostgreSQL: unknown role - the local
server trusts every password on 127.0.0.1, so a wrong password cannot be
refused there without reconfiguring it), malformed URLs, settings that fail
validation, and a working connection authenticated by the sentinel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import literal, select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from contextstore import (
    ConfigurationError,
    ConnectionManager,
    ContextStoreError,
    DatabaseUnavailableError,
    NotFoundError,
    Settings,
    Store,
    Viewer,
)
from contextstore._admin.cli import app
from tests._servers import Server

from .conftest import Account

#: short, so a silent server costs seconds, not the default ten.
CONNECT_TIMEOUT = 1.0
HEALTH_TIMEOUT = 1.5
LOGGERS = ("", "sqlalchemy", "asyncpg", "aiomysql", "pymysql", "aiosqlite", "contextstore")


@dataclass
class Watch:
    """Searches every text it is shown for the sentinel; remembers where it was found."""

    sentinel: str
    found: list[str] = field(default_factory=list)
    looked: dict[str, int] = field(default_factory=dict)

    def text(self, where: str, value: object) -> None:
        kind = where.split(":")[0]
        self.looked[kind] = self.looked.get(kind, 0) + 1
        text = value if isinstance(value, str) else str(value)
        at = text.find(self.sentinel)
        if at >= 0:
            self.found.append(f"{where}: ...{text[max(0, at - 80) : at + 40]!r}")

    def objects(self, where: str, *values: object) -> None:
        for value in values:
            name = type(value).__name__
            self.text(f"repr: {where} {name}", repr(value))
            self.text(f"str: {where} {name}", str(value))

    def error(self, where: str, error: BaseException) -> None:
        """The whole chain: causes, contexts, messages, args, attributes, traceback."""
        self.text(f"traceback: {where}", "".join(traceback.format_exception(error)))
        seen: set[int] = set()
        stack = [error]
        while stack:
            current = stack.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            name = f"{where} {type(current).__name__}"
            self.text(f"exception: {name} str", str(current))
            self.text(f"exception: {name} repr", repr(current))
            self.text(f"exception: {name} args", repr(current.args))
            self.text(f"exception: {name} attributes", repr(vars(current)))
            for linked in (current.__cause__, current.__context__):
                if linked is not None:
                    stack.append(linked)
            for value in vars(current).values():
                if isinstance(value, BaseException):
                    stack.append(value)

    def assert_clean(self) -> None:
        assert self.found == [], "\n".join(self.found)
        # the search really covered the places it claims to
        assert self.looked.get("repr", 0) > 0, self.looked


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))
        self.texts.append(repr(record.args))


@pytest.fixture
def debug_logs() -> Iterator[_Records]:
    """Every log record at DEBUG, from the root logger, SQLAlchemy, drivers and contextstore."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _settings(url: str, **overrides: Any) -> Settings:
    return Settings(database_url=url, echo_sql=True, connect_timeout=CONNECT_TIMEOUT, **overrides)


def _environment(url: str | None = None) -> dict[str, str]:
    env = {"CONTEXTSTORE_ECHO_SQL": "true", "CONTEXTSTORE_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT)}
    if url is not None:
        env["CONTEXTSTORE_DATABASE_URL"] = url
    return env


def _cli(watch: Watch, url: str, tmp_path: Path, *, ok: bool) -> None:
    """Run the commands that take a URL; none may print the password."""
    runner = CliRunner()
    target = f"sqlite:///{tmp_path / 'copy-target.db'}"
    runs = [
        (["health", "--timeout", str(HEALTH_TIMEOUT)], _environment(url)),
        (["health", "--database-url", url, "--timeout", str(HEALTH_TIMEOUT)], _environment()),
        (["db", "current", "--database-url", url], _environment()),
        (["db", "copy", url, target], _environment()),
    ]
    if ok:
        # a working database: every command that reads or writes it, each of
        # which prints its URL or facts about it
        backup = str(tmp_path / "backup.csdump")
        runs = [
            *runs[:3],
            (["db", "upgrade", "--database-url", url], _environment()),
            (["db", "check", "--database-url", url], _environment()),
            (["memory", "purge-expired", "--database-url", url], _environment()),
            (["db", "backup", backup, "--database-url", url], _environment()),
            (["db", "copy", url, target], _environment()),
            (["db", "verify", url, target], _environment()),
            (["demo", "--database-url", url, "--sessions", "2", "--messages", "5"], _environment()),
        ]
    for args, env in runs:
        result = runner.invoke(app, args, env=env)
        command = " ".join(args[:2])
        watch.text(f"cli: {command} output", result.output)
        for stream in ("stdout", "stderr"):
            # stderr may not be captured separately by this Click
            with contextlib.suppress(ValueError):
                watch.text(f"cli: {command} {stream}", getattr(result, stream))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            watch.error(f"cli {command}", result.exception)
        if ok:
            assert result.exit_code == 0, (args, result.output)
        else:
            assert result.exit_code != 0, (args, result.output)


def _finish(
    watch: Watch, logs: _Records, capsys: pytest.CaptureFixture[str], *, io: bool = True
) -> None:
    for number, text in enumerate(logs.texts):
        watch.text(f"log: record {number}", text)
    captured = capsys.readouterr()
    watch.text("output: stdout", captured.out)
    watch.text("output: stderr", captured.err)
    if io:  # something was logged, so the search of the logs proves something
        assert logs.texts, "DEBUG logging captured nothing"
    watch.assert_clean()


async def _failing_connection(
    settings: Settings, watch: Watch, expected: type[ContextStoreError] = ContextStoreError
) -> None:
    """Every public path that meets the failing server, each error and report searched."""
    watch.objects("settings", settings, settings.effective_database_url, settings.safe_url)
    store = Store(settings)
    watch.objects("new store", store)
    with pytest.raises(expected) as caught:
        await store.connect()
    watch.error("Store.connect", caught.value)
    watch.objects("failed store", store)
    report = await store.health(timeout=HEALTH_TIMEOUT)
    watch.objects("health of an unconnected store", report)

    db = ConnectionManager(settings)
    watch.objects("manager", db, db.engine, db.engine.url, db.engine.sync_engine.pool)
    try:
        report = await db.health_check(timeout=HEALTH_TIMEOUT)
        assert report.ok is False
        assert report.error
        watch.objects("health report", report)
        watch.text("health: error", report.error)
        watch.text("health: json", report.model_dump_json())
        with pytest.raises(expected) as caught:
            await db.fetch_value(select(literal(1)))
        watch.error("fetch_value", caught.value)
    finally:
        await db.dispose()
    watch.objects("disposed manager", db)


def _server_url(scheme: str, port: int, password: str, user: str = "agent") -> str:
    return f"{scheme}://{user}:{password}@127.0.0.1:{port}/contextstore"


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_connection_refused(
    scheme: str,
    sentinel: str,
    closed_port: int,
    tmp_path: Path,
    debug_logs: _Records,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = _server_url(scheme, closed_port, sentinel)
    watch = Watch(sentinel)
    asyncio.run(_failing_connection(_settings(url), watch, DatabaseUnavailableError))
    _cli(watch, url, tmp_path, ok=False)
    _finish(watch, debug_logs, capsys)


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_server_that_never_answers(
    scheme: str,
    sentinel: str,
    silent_port: int,
    tmp_path: Path,
    debug_logs: _Records,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = _server_url(scheme, silent_port, sentinel)
    watch = Watch(sentinel)
    asyncio.run(_failing_connection(_settings(url), watch, DatabaseUnavailableError))
    _cli(watch, url, tmp_path, ok=False)
    _finish(watch, debug_logs, capsys)


@pytest.mark.mysql
def test_mariadb_refuses_the_password(
    servers: dict[str, Server],
    sentinel: str,
    tmp_path: Path,
    debug_logs: _Records,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = servers["mysql"]
    server.check()
    # root on 127.0.0.1 has no password: any password given is refused
    url = server.admin_url.set(
        drivername="mysql", password=sentinel, database="mysql"
    ).render_as_string(hide_password=False)
    watch = Watch(sentinel)

    async def check() -> None:
        # a refused login is a setting to fix, and says so: not "cannot reach"
        await _failing_connection(_settings(url), watch, ConfigurationError)
        with pytest.raises(ConfigurationError, match="refused the login"):
            await Store(_settings(url)).connect()
        db = ConnectionManager(_settings(url))
        try:
            report = await db.health_check(timeout=HEALTH_TIMEOUT)
        finally:
            await db.dispose()
        # it really was the login that was refused, and the report says so
        assert "refused the login" in (report.error or ""), report.error
        assert report.ok is False

    asyncio.run(check())
    _cli(watch, url, tmp_path, ok=False)
    _finish(watch, debug_logs, capsys)


@pytest.mark.postgresql
def test_postgresql_refuses_an_unknown_role(
    servers: dict[str, Server],
    sentinel: str,
    tmp_path: Path,
    debug_logs: _Records,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = servers["postgresql"]
    server.check()
    url = server.admin_url.set(
        username=f"cs_nobody_{sentinel[-8:]}x", password=sentinel
    ).render_as_string(hide_password=False)
    watch = Watch(sentinel)

    async def check() -> None:
        await _failing_connection(_settings(url), watch, ConfigurationError)
        with pytest.raises(ConfigurationError, match="refused the login"):
            await Store(_settings(url)).connect()
        db = ConnectionManager(_settings(url))
        try:
            report = await db.health_check(timeout=HEALTH_TIMEOUT)
        finally:
            await db.dispose()
        assert "refused the login" in (report.error or ""), report.error

    asyncio.run(check())
    _cli(watch, url, tmp_path, ok=False)
    _finish(watch, debug_logs, capsys)


def _malformed(password: str) -> list[str]:
    return [
        f"postgresql://agent:{password}@127.0.0.1:notaport/db",
        f"mysql://agent:{password}@127.0.0.1:-5/db",
        f"postgresql://agent:{password}@[::1/db",
        f"agent:{password}@127.0.0.1/db",
        f"nosuchdb://agent:{password}@127.0.0.1/db",
        f"postgresql+psycopg2://agent:{password}@127.0.0.1/db",
        f"mysql+pymysql://agent:{password}@127.0.0.1/db",
        f"://agent:{password}@",
        f"postgresql://agent:{password}@127.0.0.1:5432/db?sslmode=bogus&x=%zz",
    ]


def test_malformed_urls(
    sentinel: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: _Records,
    capsys: pytest.CaptureFixture[str],
) -> None:
    watch = Watch(sentinel)
    rejected = 0
    #: non-contextstore exceptions that escaped (searched for the password all the same)
    untyped: list[str] = []
    for number, url in enumerate(_malformed(sentinel)):
        where = f"malformed url {number}"
        try:
            settings = _settings(url)
        except ConfigurationError as exc:
            rejected += 1
            watch.error(where, exc)
        else:  # accepted as a URL: it must fail when used, without the password
            try:
                asyncio.run(_failing_connection(settings, watch))
            except Exception as exc:
                watch.error(where, exc)
                untyped.append(f"{settings.safe_url}: {type(exc).__name__}: {exc}")
        monkeypatch.setenv("CONTEXTSTORE_DATABASE_URL", url)
        try:
            Settings()
        except ContextStoreError as exc:
            watch.error(f"{where} from the environment", exc)
        monkeypatch.delenv("CONTEXTSTORE_DATABASE_URL")
        result = CliRunner().invoke(app, ["health"], env=_environment(url))
        watch.text(f"cli: health {where}", result.output)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            watch.error(f"cli {where}", result.exception)
        assert result.exit_code != 0, (url, result.output)
    _finish(watch, debug_logs, capsys)
    assert rejected >= 6  # most are refused by Settings itself
    assert untyped == []


def test_settings_validation_errors(
    sentinel: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: _Records,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql://agent:{sentinel}@127.0.0.1:5432/db"
    watch = Watch(sentinel)
    bad: list[dict[str, Any]] = [
        {"pool_size": -1},
        {"max_overflow": -3},
        {"pool_timeout": 0},
        {"connect_timeout": "soon"},
        {"statement_timeout": -5},
        {"echo_sql": "maybe"},
        {"backend": "bogus"},
        {"backend": "legacy"},  # legacy works on SQLite files only
        {"auto_migrate": [url]},  # the URL itself as the invalid value
        {"pool_recycle": url},
    ]
    for number, overrides in enumerate(bad):
        with pytest.raises(ConfigurationError) as caught:
            Settings(database_url=url, **overrides)
        watch.error(f"settings {number} {sorted(overrides)}", caught.value)
    # the same from the environment and from a .env file
    monkeypatch.setenv("CONTEXTSTORE_DATABASE_URL", url)
    monkeypatch.setenv("CONTEXTSTORE_POOL_SIZE", "-1")
    with pytest.raises(ConfigurationError) as caught:
        Settings()
    watch.error("settings from the environment", caught.value)
    result = CliRunner().invoke(app, ["health"], env={"CONTEXTSTORE_POOL_SIZE": "-1"})
    watch.text("cli: health with a bad pool size", result.output)
    assert result.exit_code != 0
    monkeypatch.delenv("CONTEXTSTORE_DATABASE_URL")
    monkeypatch.delenv("CONTEXTSTORE_POOL_SIZE")
    (tmp_path / ".env").write_text(
        f"CONTEXTSTORE_DATABASE_URL={url}\nCONTEXTSTORE_POOL_TIMEOUT=-1\n", encoding="utf-8"
    )
    with pytest.raises(ConfigurationError) as caught:
        Settings()
    watch.error("settings from .env", caught.value)
    (tmp_path / ".env").unlink()
    # a valid Settings refuses changes without quoting them
    settings = _settings(url)
    watch.objects("valid settings", settings, settings.effective_database_url)
    with pytest.raises(ConfigurationError) as caught:
        settings.database_url = url  # type: ignore[misc]
    watch.error("frozen settings", caught.value)
    # a URL object with the password, given instead of text
    from_object = Settings(database_url=make_url(url))
    watch.objects("settings from a URL object", from_object, from_object.effective_database_url)
    _finish(watch, debug_logs, capsys, io=False)


async def _working_connection(settings: Settings, watch: Watch) -> None:
    """Real work with echo_sql on, an error from the database, and a health probe."""
    async with Store(settings) as store:
        watch.objects("open store", store, store.db, store.db.engine, store.db.engine.url)
        session = await store.sessions.create(purpose="secrets", created_by="agent")
        await store.messages.add(session.id, sender="agent", content="hello secret world")
        await store.memory.set("agent", "k", {"v": 1})
        await store.audit.record("login", agent_id="agent", session_id=session.id)
        viewer = Viewer(agent_id="agent")
        page = await store.messages.list(session.id, viewer=viewer)
        assert len(page.items) == 1
        # an error the database raises: its SQL and parameters are in the chain
        with pytest.raises(NotFoundError) as caught:
            await store.messages.add("no-such-session", sender="agent", content="lost")
        watch.error("messages.add on a missing session", caught.value)
        report = await store.health(timeout=5.0)
        assert report.ok, report.error
        watch.objects("health report", report)
        watch.text("health: json", report.model_dump_json())
    watch.objects("closed store", store)


def _placed(url: str, placement: str) -> str:
    """``url`` with its password where ``placement`` says: the user part, or the
    query string (``?password=``, which asyncpg and aiomysql honour)."""
    if placement == "user part":
        return url
    parsed = make_url(url)
    moved = parsed.set(password=None).update_query_dict({"password": parsed.password or ""})
    return moved.render_as_string(hide_password=False)


PLACEMENTS = ["user part", "query string"]


@pytest.mark.mysql
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_working_mariadb_account(
    mariadb_account: Account,
    placement: str,
    tmp_path: Path,
    debug_logs: _Records,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = _placed(mariadb_account.url, placement)
    assert mariadb_account.password in url
    watch = Watch(mariadb_account.password)
    asyncio.run(_working_connection(_settings(url), watch))
    _cli(watch, url, tmp_path, ok=True)
    _finish(watch, debug_logs, capsys)


@pytest.mark.postgresql
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_postgresql_connection_with_a_password(
    postgresql_empty_url: str,
    placement: str,
    sentinel: str,
    tmp_path: Path,
    debug_logs: _Records,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the local server trusts 127.0.0.1 and ignores the password; it is still
    # handed to the driver, so everything around the connection must hide it
    url = make_url(postgresql_empty_url).set(password=sentinel)
    text = _placed(url.render_as_string(hide_password=False), placement)
    watch = Watch(sentinel)
    asyncio.run(_working_connection(_settings(text), watch))
    _cli(watch, text, tmp_path, ok=True)
    _finish(watch, debug_logs, capsys)

"""Fixtures for the secrets tests: a sentinel password and places that reject or ignore it.

* ``sentinel``: a fresh password for one test, which must never be shown;
* ``closed_port``: a local port nothing listens on (connections refused);
* ``silent_port``: a local port that completes the TCP handshake and never
  says a word (a hung server, as far as a client can tell);
* ``mariadb_account``: a MariaDB user whose password is the sentinel, with
  every privilege on one fresh test database (dropped afterwards).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import make_url

from tests._servers import Server


@pytest.fixture
def sentinel() -> str:
    return f"S3ntinel-pw-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there now


@pytest.fixture
def silent_port() -> Iterator[int]:
    # listen() without accept(): the kernel completes the handshake for the
    # backlog, and no byte ever comes back
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


@dataclass
class Account:
    user: str
    password: str
    #: the account's URL on its test database (async driver, password in clear)
    url: str


@pytest.fixture
def mariadb_account(
    servers: dict[str, Server], mysql_empty_url: str, sentinel: str
) -> Iterator[Account]:
    server = servers["mysql"]
    user = f"cs_secret_{uuid.uuid4().hex[:10]}"
    database = make_url(mysql_empty_url).database
    server.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{sentinel}'")
    try:
        server.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%'")
        url = make_url(mysql_empty_url).set(username=user, password=sentinel)
        yield Account(user, sentinel, url.render_as_string(hide_password=False))
    finally:
        server.execute(f"DROP USER IF EXISTS '{user}'@'%'")

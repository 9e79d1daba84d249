"""What a new MySQL/MariaDB session runs, by what its server says of itself."""

from __future__ import annotations

from contextstore._dialects.mysql import is_galera, session_statements

MARIADB = {"version": "10.11.19-MariaDB-0+deb12u1"}
GALERA = {**MARIADB, "wsrep_on": "ON", "wsrep_provider": "/usr/lib/galera/libgalera_smm.so"}


def test_a_galera_node_reads_its_clusters_writes_and_leaves_retries_to_contextstore() -> None:
    assert is_galera(GALERA)
    assert session_statements(GALERA, None) == [
        "SET SESSION wsrep_sync_wait = 1, wsrep_retry_autocommit = 0"
    ]
    assert session_statements(GALERA, 2.5) == [
        "SET SESSION max_statement_time = 2.500",
        "SET SESSION wsrep_sync_wait = 1, wsrep_retry_autocommit = 0",
    ]


def test_a_server_without_galera_gets_the_statement_limit_only() -> None:
    without_provider = {**MARIADB, "wsrep_on": "ON", "wsrep_provider": "none"}
    switched_off = {**GALERA, "wsrep_on": "OFF"}
    for facts in (MARIADB, without_provider, switched_off):
        assert not is_galera(facts)
        assert session_statements(facts, 0.0001) == ["SET SESSION max_statement_time = 0.001"]
    assert session_statements({"version": "8.0.36"}, 1.0) == [
        "SET SESSION max_execution_time = 1000"
    ]
    assert session_statements(MARIADB, None) == []

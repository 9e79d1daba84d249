"""``replica_urls``: parsed from keywords or the environment, normalised, masked, refused
where they cannot work."""

from __future__ import annotations

import pickle

import pytest

from contextstore import Settings
from contextstore.errors import ConfigurationError

PRIMARY = "postgresql://app:pw1@primary/db"


def test_replica_urls_are_normalised_and_masked_everywhere() -> None:
    settings = Settings(
        database_url=PRIMARY,
        replica_urls=[
            "postgres://app:secret2@standby1/db",
            "postgresql://app@standby2/db?password=secret3",
        ],
    )
    assert [str(url) for url in settings.effective_replica_urls] == [
        "postgresql+asyncpg://app:***@standby1/db",
        "postgresql+asyncpg://app:***@standby2/db",
    ]
    assert [url.password for url in settings.effective_replica_urls] == ["secret2", "secret3"]
    renderings = [repr(settings), str(settings), str(settings.model_dump()), str(vars(settings))]
    for text in renderings:
        assert "secret2" not in text
        assert "secret3" not in text
        assert "standby1" in text
    with pytest.raises(ConfigurationError) as caught:
        pickle.dumps(settings)
    assert "secret" not in str(caught.value)


def test_replica_urls_default_to_none() -> None:
    settings = Settings(database_url=PRIMARY)
    assert settings.replica_urls == []
    assert settings.effective_replica_urls == []


@pytest.mark.parametrize(
    "text",
    [
        '["postgresql://u:secret@standby1/db", "postgresql://standby2/db"]',
        "postgresql://u:secret@standby1/db, postgresql://standby2/db",
    ],
)
def test_replica_urls_from_the_environment_as_json_or_commas(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("CONTEXTSTORE_REPLICA_URLS", text)
    settings = Settings(database_url=PRIMARY)
    assert settings.replica_urls == [
        "postgresql+asyncpg://u:***@standby1/db",
        "postgresql+asyncpg://standby2/db",
    ]


def test_broken_json_is_refused_without_quoting_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXTSTORE_REPLICA_URLS", '["postgresql://u:secret@standby1/db"')
    with pytest.raises(ConfigurationError, match="replica_urls") as caught:
        Settings(database_url=PRIMARY)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"replica_urls": ["mysql://u:secret@replica/db"]}, "replica of a postgresql primary"),
        ({"replica_urls": ["sqlite:///./other.db"]}, "replica of a postgresql primary"),
        ({"replica_urls": ["postgresql+psycopg2://u:secret@r/db"]}, "replica_urls[0]: driver"),
        ({"replica_urls": ["postgresql://u:secret@r:70000/db"]}, "replica_urls[0]: port"),
        ({"replica_urls": ["not a url secret"]}, "replica_urls[0]: not a valid"),
    ],
)
def test_replicas_that_cannot_work_are_refused(values: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings(database_url=PRIMARY, **values)  # type: ignore[arg-type]
    assert words in str(caught.value)
    assert "secret" not in str(caught.value)


def test_legacy_backend_has_no_replicas() -> None:
    with pytest.raises(ConfigurationError, match="replica_urls: backend 'legacy'"):
        Settings(
            database_url="sqlite:///./x.db", backend="legacy", replica_urls=["postgresql://r/db"]
        )

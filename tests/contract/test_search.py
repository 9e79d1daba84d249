"""Full-text search: whole words, case-insensitive, best first, operators are plain text.

Test words are distinctive. Filler messages keep a searched word from
appearing in every row except where that is the point. What a word is (accents,
punctuation, short words, stop words, CJK) is ``test_search_everywhere.py``'s.
"""

from __future__ import annotations

import pytest

from contextstore import Message, SearchHit, Store

from ._factories import ADMIN, make_session
from ._oracle import words

FILLER = [f"pangolin filler {n}" for n in ("one", "two", "three", "four", "five")]


async def post(store: Store, session_id: str, contents: list[str]) -> list[Message]:
    return [
        await store.messages.add(session_id, sender="alice", content=content)
        for content in contents
    ]


def assert_ranked(hits: list[SearchHit]) -> None:
    """Floats, best first, each message once."""
    assert all(isinstance(hit.score, float) for hit in hits)
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    ids = [hit.message.id for hit in hits]
    assert len(ids) == len(set(ids))


def ids(hits: list[SearchHit]) -> set[int]:
    return {hit.message.id for hit in hits}


async def test_matches_whole_words_case_insensitively(store: Store) -> None:
    await make_session(store, "s")
    matching = await post(
        store,
        "s",
        [
            "a quokka in lower case",
            "A QUOKKA IN UPPER CASE",
            "Quokka at the start",
            "ends with a quokka.",
            "(quokka) in brackets",
            "pre-quokka hyphenated",
        ],
    )
    await post(
        store,
        "s",
        [
            "quokkaesque is a longer word",
            "aquokka glued",
            "quok ka split",
            "quokkas plural",
            *FILLER,
        ],
    )
    for query in ("quokka", "QUOKKA", "Quokka", "  quokka  "):
        hits = await store.messages.search(query, viewer=ADMIN, limit=100)
        assert ids(hits) == {m.id for m in matching}, query
        assert_ranked(hits)
        for hit in hits:
            assert hit.message == await store.messages.get(hit.message.id, viewer=ADMIN)


async def test_a_word_present_in_every_message_is_still_found(store: Store) -> None:
    await make_session(store, "s")
    messages = await post(store, "s", ["quokka one", "quokka two"])
    hits = await store.messages.search("quokka", viewer=ADMIN)
    assert ids(hits) == {m.id for m in messages}


async def test_more_occurrences_rank_higher(store: Store) -> None:
    await make_session(store, "s")
    once, thrice = await post(
        store, "s", ["quokka wombat wombat wombat", "quokka quokka quokka wombat"]
    )
    await post(store, "s", FILLER)
    hits = await store.messages.search("quokka", viewer=ADMIN)
    assert [hit.message.id for hit in hits] == [thrice.id, once.id]
    assert hits[0].score > hits[1].score
    assert_ranked(hits)


async def test_session_filter_and_limit(store: Store) -> None:
    for name in ("s1", "s2"):
        await make_session(store, name)
    in_s1 = await post(store, "s1", [f"narwhal {i}" for i in range(6)])
    in_s2 = await post(store, "s2", [f"narwhal {i}" for i in range(4)])
    await post(store, "s2", FILLER)
    assert ids(await store.messages.search("narwhal", viewer=ADMIN, session_id="s1")) == {
        m.id for m in in_s1
    }
    assert ids(await store.messages.search("narwhal", viewer=ADMIN, session_id="s2")) == {
        m.id for m in in_s2
    }
    everywhere = await store.messages.search("narwhal", viewer=ADMIN, limit=1000)
    assert ids(everywhere) == {m.id for m in in_s1 + in_s2}
    limited = await store.messages.search("narwhal", viewer=ADMIN, limit=3)
    assert len(limited) == 3
    assert ids(limited) <= ids(everywhere)
    assert_ranked(limited)
    assert await store.messages.search("narwhal", viewer=ADMIN, session_id="s3") == []
    assert await store.messages.search("unicorns", viewer=ADMIN) == []


CORPUS = ["quokka grazing", "narwhal swimming", "quokka meets narwhal", "pangolin alone"]

#: queries full of operators of some engine's syntax; the expected matches are the
#: messages containing any of the query's plain words (``fts5_query``: words OR-ed).
OPERATOR_QUERIES = [
    "-quokka",
    "+quokka -narwhal",
    '"quokka narwhal"',
    '"quokka',
    "quokka*",
    "quokk*",
    "NEAR(quokka narwhal)",
    "NEAR(quokka",
    "quokka AND NOT narwhal",
    "quokka OR",
    "narwhal:swimming",
    "^quokka",
    "(quokka) | {narwhal}",
    "quokka~ <narwhal>",
    "'; DROP TABLE messages; -- quokka",
    "quokka' OR '1'='1",
    "quokka%",
    "quokka\\",
    "@quokka",
]


@pytest.mark.parametrize("query", OPERATOR_QUERIES)
async def test_operators_are_searched_as_plain_words(store: Store, query: str) -> None:
    await make_session(store, "s")
    messages = await post(store, "s", CORPUS + FILLER)
    hits = await store.messages.search(query, viewer=ADMIN, limit=100)
    expected = {m.id for m in messages if words(m.content) & words(query)}
    assert ids(hits) == expected
    assert_ranked(hits)


@pytest.mark.parametrize("query", ["%", "_", "*", '"', "()", "+-~<>()", "''", "-- ;", "\\"])
async def test_a_query_without_words_finds_nothing(store: Store, query: str) -> None:
    await make_session(store, "s")
    await post(store, "s", [f"contains {query} literally", *CORPUS])
    assert await store.messages.search(query, viewer=ADMIN) == []

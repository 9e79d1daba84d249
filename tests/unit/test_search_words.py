# ruff: noqa: RUF001  (look-alike letters are the point here)
"""The one normalisation search runs by, without a database: words, terms, queries."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contextstore._facts import (
    MAX_INDEXED_WORDS,
    MAX_QUERY_WORDS,
    MAX_TERM_LENGTH,
    fts5_query,
    search_term,
    search_text,
    search_tokens,
    search_words,
)

WORDS = {
    "İstanbul": ["istanbul"],
    "ISTANBUL ıstanbul istanbul": ["istanbul"] * 3,
    "ÉCOLE": ["ecole"],
    "über Straße": ["uber", "strasse"],
    "user@example.com": ["user", "example", "com"],
    "3.14159": ["3", "14159"],
    "foo_bar": ["foo", "bar"],
    "a go the and": ["a", "go", "the", "and"],
    "东京タワー": ["东", "京", "タ", "ワ", "ー"],
    "ガ は ば": ["ガ", "は", "ば"],  # voicing marks kept: ば is not は
    "한국어": ["한국어"],
    "ﬁ ℌ Ⅻ ²": ["fi", "h", "xii", "2"],
    "Ærø Łódź œuvre": ["aero", "lodz", "oeuvre"],
    "Αθήνα": ["αθηνα"],
    "हिन्दी": ["हनद"],  # marks dropped inside the word, not split at
    "don't": ["don", "t"],
    "   ": [],
    "🎉!?": [],
}


@pytest.mark.parametrize(("text", "expected"), list(WORDS.items()))
def test_words(text: str, expected: list[str]) -> None:
    assert search_tokens(text) == expected


TERM = re.compile(r"z[wuh][a-z0-9]+")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_every_term_is_one_plain_ascii_word_for_every_engine(text: str) -> None:
    terms = search_text(text).split(" ") if search_text(text) else []
    assert len(terms) == len(search_tokens(text))
    for term in terms:
        assert TERM.fullmatch(term), term
        # InnoDB's default minimum token size is 3; no InnoDB stop word starts with z
        assert 3 <= len(term) <= MAX_TERM_LENGTH


def test_different_words_are_different_terms() -> None:
    words = ["a", "ab", "é", "zwa", "wa", "00", "0", "x" * 31, "x" * 30, "東", "京", "ıi"]
    terms = [search_term(token) for token in dict.fromkeys(map(str.casefold, words))]
    assert len(set(terms)) == len(terms)


def test_only_the_first_distinct_words_of_a_huge_message_are_indexed() -> None:
    words = [f"w{i}" for i in range(MAX_INDEXED_WORDS + 50)]
    text = search_text(" ".join(words + words[:5]))
    indexed = set(text.split())
    assert len(indexed) == MAX_INDEXED_WORDS
    assert search_term(words[MAX_INDEXED_WORDS - 1]) in indexed
    assert search_term(words[MAX_INDEXED_WORDS]) not in indexed
    # repeats of indexed words still count (ranking)
    assert text.split().count(search_term(words[0])) == 2


def test_a_query_searches_its_first_distinct_words() -> None:
    query = " ".join(f"Q{i} q{i}" for i in range(MAX_QUERY_WORDS + 10))
    assert search_words(query) == [search_term(f"q{i}") for i in range(MAX_QUERY_WORDS)]


@pytest.mark.parametrize(
    "query", ['"a" OR b*', "NEAR(a b)", "'; DROP TABLE messages; --", "a:b ^c", "+a -b ~c"]
)
def test_queries_reach_fts5_as_quoted_plain_terms(query: str) -> None:
    expression = fts5_query(query)
    assert expression is not None
    assert re.fullmatch(r'"z[wuh][a-z0-9]+"( OR "z[wuh][a-z0-9]+")*', expression)


def test_a_query_without_words_searches_nothing() -> None:
    assert search_words("!? -- 🎉") == []
    assert fts5_query("!? -- 🎉") is None

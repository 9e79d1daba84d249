"""The generated data every subject receives: messages, their senders, the viewer."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any, NamedTuple


class MessageData(NamedTuple):
    """One message's fields, as every subject receives them."""

    sender: str
    sender_type: str
    content: str
    visibility: str
    message_type: str
    metadata: dict[str, Any]


SENDERS = tuple(f"agent-{i:02d}" for i in range(20))
SENDER_TYPES = ("worker", "planner", "critic")
VISIBILITY_WEIGHTS = (("public", 70), ("private", 10), ("agent_only", 10), ("admin_only", 10))
#: the viewer of every read: not an admin, sees public messages, its own and
#: the agent_only messages of other workers.
VIEWER_ID = "agent-03"
VIEWER_TYPE = "worker"


class Corpus:
    """Deterministic messages over a Zipf-distributed vocabulary of pseudo-words.

    Pseudo-words (syllables) are never stop words and always at least 4
    characters, so MariaDB's FULLTEXT parser indexes every one of them.
    """

    def __init__(self, seed: int = 6, vocabulary: int = 3000) -> None:
        rng = random.Random(seed)
        consonants, vowels = "bdfgklmnprstvz", "aeiou"
        words: list[str] = []
        seen: set[str] = set()
        while len(words) < vocabulary:
            word = "".join(
                rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4))
            )
            if word not in seen:
                seen.add(word)
                words.append(word)
        self.words = words
        self._cumulative = list(_accumulate(1.0 / rank for rank in range(1, vocabulary + 1)))
        self._rng = random.Random(seed + 1)
        self._visibilities = [v for v, weight in VISIBILITY_WEIGHTS for _ in range(weight)]
        self._serial = 0

    def search_query(self) -> str:
        """Two words of middling frequency: together in about 1.5 % of messages."""
        return f"{self.words[199]} {self.words[899]}"

    def message(self) -> MessageData:
        rng = self._rng
        self._serial += 1
        sender = rng.randrange(len(SENDERS))
        content = " ".join(
            rng.choices(self.words, cum_weights=self._cumulative, k=rng.randint(8, 40))
        )
        return MessageData(
            sender=SENDERS[sender],
            sender_type=SENDER_TYPES[sender % len(SENDER_TYPES)],
            content=content,
            visibility=rng.choice(self._visibilities),
            message_type="agent_response",
            metadata={"seq": self._serial, "tag": "bench"},
        )

    def messages(self, count: int) -> list[MessageData]:
        return [self.message() for _ in range(count)]


def _accumulate(values: Any) -> Any:
    total = 0.0
    for value in values:
        total += value
        yield total


def utcnow() -> datetime:
    return datetime.now(UTC)

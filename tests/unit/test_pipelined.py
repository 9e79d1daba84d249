"""The bulk paths' pipeline (``_dialects._base.pipelined``), on its own: which
part is made when, and what happens to the send in flight when making a part
fails, a send fails, or the caller is cancelled.

The sends here are coroutines that wait for the test's signal, standing in for
a server's reply; the bulk paths that use the pipeline run against real
servers in ``tests/dialects`` (``test_bulk_insert.py``, ``test_postgresql.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from contextstore._dialects._base import pipelined


class Line:
    """A stand-in for a connection: each send waits for its reply; the log
    says when each part was made, sent and answered."""

    def __init__(self, fail_send: int | None = None) -> None:
        self.log: list[str] = []
        self.replies: dict[int, asyncio.Event] = {}
        self.fail_send = fail_send
        self.in_flight = 0
        self.cancelled: list[int] = []
        self._noted: dict[str, asyncio.Event] = {}

    def note(self, entry: str) -> None:
        self.log.append(entry)
        self._noted.setdefault(entry, asyncio.Event()).set()

    async def reached(self, entry: str) -> None:
        """Until ``entry`` is in the log."""
        await asyncio.wait_for(self._noted.setdefault(entry, asyncio.Event()).wait(), 5)

    def parts(self, count: int, fail_make: int | None = None) -> Iterator[int]:
        for number in range(count):
            if number == fail_make:
                raise ValueError(f"part {number} cannot be made")
            self.note(f"made {number}")
            yield number

    async def send(self, part: int) -> str:
        self.note(f"sent {part}")
        self.in_flight += 1
        reply = self.replies.setdefault(part, asyncio.Event())
        try:
            await reply.wait()
        except asyncio.CancelledError:
            self.cancelled.append(part)
            raise
        finally:
            self.in_flight -= 1
        if part == self.fail_send:
            raise ConnectionError(f"part {part} refused")
        self.note(f"answered {part}")
        return f"answer {part}"

    async def answer_all(self) -> None:
        """Reply to every part as it arrives, one loop turn later."""
        number = 0
        while True:
            await asyncio.sleep(0)
            if number in self.replies:
                self.replies[number].set()
                number += 1


async def test_each_part_is_made_while_the_one_before_is_in_flight() -> None:
    line = Line()
    answering = asyncio.create_task(line.answer_all())
    try:
        answers = await pipelined(line.parts(3), line.send)
    finally:
        answering.cancel()
    assert answers == ["answer 0", "answer 1", "answer 2"]
    assert line.log == [
        "made 0",
        "sent 0",
        "made 1",
        "answered 0",
        "sent 1",
        "made 2",
        "answered 1",
        "sent 2",
        "answered 2",
    ]


async def test_no_parts_send_nothing() -> None:
    line = Line()
    assert await pipelined(line.parts(0), line.send) == []
    assert line.log == []


async def test_a_part_that_cannot_be_made_waits_for_the_send_in_flight() -> None:
    line = Line()
    answering = asyncio.create_task(line.answer_all())
    try:
        with pytest.raises(ValueError, match="part 2 cannot be made"):
            await pipelined(line.parts(5, fail_make=2), line.send)
    finally:
        answering.cancel()
    # part 1 was on the line when part 2 failed: answered before the error
    assert line.log[-2:] == ["sent 1", "answered 1"]
    assert line.in_flight == 0
    assert line.cancelled == []


async def test_a_failed_send_stops_the_parts() -> None:
    line = Line(fail_send=1)
    answering = asyncio.create_task(line.answer_all())
    try:
        with pytest.raises(ConnectionError, match="part 1 refused"):
            await pipelined(line.parts(5), line.send)
    finally:
        answering.cancel()
    # part 2 was made while part 1 ran, and never sent
    assert line.log == ["made 0", "sent 0", "made 1", "answered 0", "sent 1", "made 2"]
    assert line.in_flight == 0


@pytest.mark.parametrize("when", ["while-the-part-is-sent", "while-it-is-answered"])
async def test_a_cancelled_caller_cancels_and_settles_the_send_in_flight(when: str) -> None:
    line = Line()
    loop_tasks = asyncio.all_tasks()
    caller: asyncio.Task[list[str]] | None = None

    async def send(part: int) -> str:
        if when == "while-the-part-is-sent":
            # the send's first step: the caller is still in its turn of the loop
            assert caller is not None
            caller.cancel()
        return await line.send(part)

    caller = asyncio.create_task(pipelined(line.parts(5), send))
    if when == "while-it-is-answered":
        await line.reached("made 1")
        caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert line.cancelled == [0]
    assert line.in_flight == 0
    assert not {t for t in asyncio.all_tasks() - loop_tasks if not t.done()}


async def test_cancelled_twice_leaves_no_send_running() -> None:
    # the second cancellation reaches the send while it settles the first (a
    # driver's cancellation may need the server: asyncpg's CopyFail); the
    # connection is then given up by the caller, and nothing runs on it
    line = Line()
    settling = asyncio.Event()

    async def slow_to_cancel(part: int) -> str:
        try:
            return await line.send(part)
        except asyncio.CancelledError:
            settling.set()
            await asyncio.Event().wait()  # until cancelled again
            raise

    loop_tasks = asyncio.all_tasks()
    task = asyncio.create_task(pipelined(line.parts(5), slow_to_cancel))
    await line.reached("sent 0")
    task.cancel()
    await asyncio.wait_for(settling.wait(), 5)
    assert not task.done()  # the first cancellation waits for the send
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert line.in_flight == 0
    assert not {t for t in asyncio.all_tasks() - loop_tasks if not t.done()}


async def test_a_send_that_failed_as_the_caller_was_cancelled_is_not_left_unread() -> None:
    import gc

    unread: list[object] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: unread.append(context))
    caller: asyncio.Task[list[str]] | None = None

    async def send(part: int) -> str:
        assert caller is not None
        caller.cancel()  # the caller is cancelled in its turn of the loop...
        raise ConnectionError(f"part {part} refused")  # ...and the send fails

    try:
        caller = asyncio.create_task(pipelined(iter([0, 1]), send))
        with pytest.raises(asyncio.CancelledError) as caught:
            await caller
        # every reference to the failed send dropped: an exception never
        # retrieved is reported when its task is collected
        del caught
        caller = None
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert unread == []

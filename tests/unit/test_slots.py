"""The execution core's slot semaphore: FIFO hand-over, one timer, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from contextstore._slots import Slots


async def test_waiters_get_released_slots_in_arrival_order() -> None:
    slots = Slots(1, timeout=5.0)
    await slots.acquire()
    order: list[int] = []

    async def waiter(number: int) -> None:
        await slots.acquire()
        order.append(number)

    tasks = [asyncio.create_task(waiter(n)) for n in range(3)]
    await asyncio.sleep(0)
    for _ in range(3):
        slots.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]


async def test_a_newcomer_does_not_overtake_a_waiter() -> None:
    slots = Slots(1, timeout=5.0)
    await slots.acquire()
    waiting = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # handed to the waiter, not left free
    newcomer = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    assert waiting.done()
    assert not newcomer.done()
    slots.release()
    await asyncio.wait_for(newcomer, 1.0)


async def test_a_wait_past_the_timeout_raises_and_later_waiters_go_on() -> None:
    slots = Slots(1, timeout=0.05)
    await slots.acquire()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await slots.acquire()
    assert 0.04 <= loop.time() - started < 1.0
    # the slot is still held once; a release makes it free again
    slots.release()
    await asyncio.wait_for(slots.acquire(), 0.01)


async def test_waiters_time_out_one_after_another() -> None:
    # deadlines 0.5 s apart, checked midway between them: a loaded machine
    # (CI with other work beside it) delays the sleeps by far less than that
    slots = Slots(1, timeout=1.0)
    await slots.acquire()
    first = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0.5)
    second = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0.75)
    assert first.done()
    assert isinstance(first.exception(), TimeoutError)
    assert not second.done()  # its own deadline has not come yet
    slots.release()
    await asyncio.wait_for(second, 1.0)


async def test_a_cancelled_waiter_that_was_handed_a_slot_passes_it_on() -> None:
    slots = Slots(1, timeout=5.0)
    await slots.acquire()
    cancelled = asyncio.create_task(slots.acquire())
    after = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # hands the slot to ``cancelled`` ...
    cancelled.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await asyncio.wait_for(after, 1.0)  # the slot went on instead of leaking


async def test_a_cancelled_waiter_takes_no_slot() -> None:
    slots = Slots(1, timeout=5.0)
    await slots.acquire()
    cancelled = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    slots.release()
    await asyncio.wait_for(slots.acquire(), 0.01)  # free again: nothing leaked


async def test_a_waiter_queued_with_wait_is_handed_an_item_with_its_slot() -> None:
    slots = Slots(1, timeout=5.0)
    await slots.acquire()
    waiter = slots.wait()
    assert slots.hand_over("lease")
    assert await waiter == "lease"
    # nobody waits now: the slot stays the caller's
    assert not slots.hand_over("other")
    assert not slots.try_acquire()


async def test_a_bare_slot_released_to_a_wait_is_none() -> None:
    slots = Slots(1, timeout=5.0)
    await slots.acquire()
    waiter = slots.wait()
    slots.release()
    assert await waiter is None
    assert not slots.try_acquire()  # the waiter holds the slot


async def test_an_item_is_not_handed_past_an_older_waiter_for_a_bare_slot() -> None:
    slots = Slots(1, timeout=5.0)
    await slots.acquire()
    bare = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    taker = slots.wait()
    assert not slots.hand_over("lease")  # first in, first out: the bare waiter is first
    slots.release()
    await asyncio.wait_for(bare, 1.0)
    assert not taker.done()


async def test_hand_over_skips_cancelled_waits() -> None:
    slots = Slots(1, timeout=5.0)
    await slots.acquire()
    gone = slots.wait()
    gone.cancel()
    taker = slots.wait()
    assert slots.hand_over("lease")
    assert Slots.handed(taker)
    assert not Slots.handed(gone)
    assert taker.result() == "lease"


async def test_a_wait_past_the_timeout_fails_with_timeout_error() -> None:
    slots = Slots(1, timeout=0.05)
    await slots.acquire()
    waiter = slots.wait()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(waiter, 1.0)
    assert not Slots.handed(waiter)

"""Names and viewers that passed validation are remembered: the same answers as
checking them every time, for bad input above all, with bounded memory."""

from __future__ import annotations

from typing import Any

import pytest

from contextstore import ValidationError, Viewer, _validate


class _Lookalike(str):
    """A str subclass that claims to equal, and hash as, any remembered name."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash("agent-1")

    def __eq__(self, other: object) -> bool:
        return True


def test_a_remembered_name_is_accepted_again() -> None:
    assert _validate.name("agent_id", "agent-1") == "agent-1"
    assert _validate.name("agent_id", "agent-1") == "agent-1"


@pytest.mark.parametrize("bad", ["", "  ", "a\x00b", "x" * 256, "\ud800", 7, None, ["agent-1"]])
def test_bad_names_are_refused_every_time(bad: Any) -> None:
    _validate.name("agent_id", "agent-1")
    for _ in range(2):
        with pytest.raises(ValidationError, match="agent_id"):
            _validate.name("agent_id", bad)


def test_a_str_subclass_cannot_pass_as_a_remembered_name() -> None:
    _validate.name("agent_id", "agent-1")
    with pytest.raises(ValidationError, match="NUL"):
        _validate.name("agent_id", _Lookalike("bad\x00"))


def test_a_remembered_name_still_meets_a_shorter_limit() -> None:
    _validate.name("agent_id", "agent-1")
    with pytest.raises(ValidationError, match="at most 3 characters"):
        _validate.name("agent_id", "agent-1", 3)


def test_remembered_names_are_bounded() -> None:
    for number in range(_validate._NAMES_HELD + 10):
        _validate.name("key", f"key-{number}")
    assert len(_validate._NAMES) <= _validate._NAMES_HELD


def test_a_remembered_viewer_is_accepted_again() -> None:
    viewer = Viewer(agent_id="agent-1", agent_type="worker")
    assert _validate.viewer(viewer) is viewer
    assert _validate.viewer(viewer) is viewer


@pytest.mark.parametrize(
    "bad",
    [
        Viewer(agent_id="", agent_type="worker"),
        Viewer(agent_id="agent-1", agent_type="x" * 256),
        Viewer.model_construct(agent_id="agent-1", agent_type="worker", is_admin="yes"),
        Viewer.model_construct(agent_id=None, agent_type="worker", is_admin=False),
        "agent-1",
        None,
        False,
    ],
)
def test_bad_viewers_are_refused_every_time(bad: Any) -> None:
    for _ in range(2):
        with pytest.raises(ValidationError, match="viewer"):
            _validate.viewer(bad)


def test_an_equal_viewer_is_checked_on_its_own() -> None:
    # remembered by identity: an equal Viewer is checked on its own, and the
    # remembered one is kept alive so that its id cannot name another object
    first = Viewer(agent_id="agent-1", agent_type="worker")
    _validate.viewer(first)
    second = Viewer(agent_id="agent-1", agent_type="worker")
    assert _validate.viewer(second) is second
    assert _validate._VIEWERS[id(first)] is first


def test_remembered_viewers_are_bounded() -> None:
    for number in range(_validate._VIEWERS_HELD + 10):
        _validate.viewer(Viewer(agent_id=f"agent-{number}"))
    assert len(_validate._VIEWERS) <= _validate._VIEWERS_HELD

"""Sessions: create, get, update, delete, activity. (Listing pages: test_pagination.)"""

from __future__ import annotations

from contextstore import Session, SessionActivity, Store, Viewer

from ._factories import ADMIN, make_session
from ._oracle import is_utc


async def test_create_fills_the_defaults_and_get_reads_it_back(store: Store) -> None:
    session = await store.sessions.create(purpose="plan a trip", created_by="alice")
    assert isinstance(session, Session)
    assert session.id
    assert (session.purpose, session.created_by) == ("plan a trip", "alice")
    assert session.metadata == {}
    assert session.is_active is True
    assert is_utc(session.created_at)
    assert session.created_at == session.updated_at
    assert await store.sessions.get(session.id) == session
    other = await store.sessions.create(purpose="another", created_by="alice")
    assert other.id != session.id


async def test_create_with_an_id_and_metadata(store: Store) -> None:
    metadata = {"priority": 1, "tags": ["a", "b"], "nested": {"ok": True, "none": None}}
    session = await make_session(store, "chosen-id", metadata=metadata)
    assert session.id == "chosen-id"
    assert session.metadata == metadata
    assert await store.sessions.get("chosen-id") == session
    assert await store.sessions.get("chosen-id-2") is None


async def test_update_changes_only_the_given_fields(store: Store) -> None:
    created = await make_session(store, "s1", metadata={"v": 1})
    renamed = await store.sessions.update("s1", purpose="renamed")
    assert renamed.purpose == "renamed"
    assert (renamed.metadata, renamed.is_active) == ({"v": 1}, True)
    assert renamed.created_at == created.created_at
    assert renamed.updated_at > created.updated_at
    assert await store.sessions.get("s1") == renamed

    closed = await store.sessions.update("s1", is_active=False, metadata={"v": 2})
    assert (closed.purpose, closed.metadata, closed.is_active) == ("renamed", {"v": 2}, False)
    assert closed.updated_at > renamed.updated_at
    emptied = await store.sessions.update("s1", metadata={})
    assert emptied.metadata == {}

    unchanged = await store.sessions.update("s1")
    assert unchanged == emptied
    assert await store.sessions.get("s1") == emptied


async def test_delete_reports_whether_it_deleted(store: Store) -> None:
    await make_session(store, "s1")
    kept = await make_session(store, "s2")
    assert await store.sessions.delete("s1") is True
    assert await store.sessions.delete("s1") is False
    assert await store.sessions.delete("never-existed") is False
    assert await store.sessions.get("s1") is None
    assert await store.sessions.get("s2") == kept


async def test_activity_counts_what_the_viewer_may_see(store: Store) -> None:
    await make_session(store, "s1")
    await make_session(store, "quiet")
    await make_session(store, "elsewhere")
    await store.messages.add("elsewhere", sender="carol", content="not counted")
    one = await store.messages.add("s1", sender="alice", content="one")
    two = await store.messages.add("s1", sender="alice", content="two", visibility="private")
    three = await store.messages.add(
        "s1", sender="bob", content="three", visibility="admin_only", sender_type="robot"
    )
    four = await store.messages.add(
        "s1", sender="bob", content="four", visibility="agent_only", sender_type="robot"
    )
    # viewer -> the messages it may read, by the visibility rules
    seen = {
        ADMIN: [one, two, three, four],
        Viewer(agent_id="alice"): [one, two],
        Viewer(agent_id="bob"): [one, three, four],
        Viewer(agent_id="dave", agent_type="robot"): [one, four],
        Viewer(agent_id="eve"): [one],
    }
    for viewer, visible in seen.items():
        activity = await store.sessions.activity("s1", viewer=viewer)
        assert activity == SessionActivity(
            session_id="s1",
            message_count=len(visible),
            unique_senders=len({m.sender for m in visible}),
            last_message_at=max(m.timestamp for m in visible),
        ), viewer
        assert activity.message_count == await store.messages.count("s1", viewer=viewer)
        assert is_utc(activity.last_message_at)
    assert await store.sessions.activity("quiet", viewer=ADMIN) == SessionActivity(
        session_id="quiet", message_count=0, unique_senders=0, last_message_at=None
    )


async def test_activity_of_a_session_whose_messages_are_all_hidden(store: Store) -> None:
    # the case: 2 messages, 2 senders, none of them visible to the caller
    await make_session(store, "secret")
    await store.messages.add("secret", sender="alice", content="mine", visibility="private")
    await store.messages.add("secret", sender="bob", content="ops", visibility="admin_only")
    assert await store.sessions.activity("secret", viewer=Viewer(agent_id="eve")) == (
        SessionActivity(
            session_id="secret", message_count=0, unique_senders=0, last_message_at=None
        )
    )
    assert (await store.sessions.activity("secret", viewer=ADMIN)).message_count == 2

"""The visibility rule, as one Core expression used by every message read path.

* ``public``     - everyone;
* ``private``    - the sender only;
* ``agent_only`` - the sender and viewers whose ``agent_type`` equals the
  message's ``sender_type``;
* ``admin_only`` - the sender and admins.

Admins see everything. A message the viewer may not see is filtered out in
SQL, so it is indistinguishable from a missing one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, and_, bindparam, literal_column, or_, true
from sqlalchemy.sql.elements import ColumnElement

from ..models import Viewer
from ..schema import messages

__all__ = ["VISIBLE_TO_VIEWER", "viewer_params", "visible_to"]


def _rule(viewer_id: Any, viewer_type: Any) -> ColumnElement[bool]:
    """The rule for a non-admin viewer; the arguments are values or bind parameters."""
    # the rule's own constants are written into the SQL, not bound: with only
    # the viewer bound, PostgreSQL can cache one generic plan per statement
    return or_(
        messages.c.visibility == _PUBLIC,
        messages.c.sender == viewer_id,
        and_(messages.c.visibility == _AGENT_ONLY, messages.c.sender_type == viewer_type),
    )


_PUBLIC = literal_column("'public'", String)
_AGENT_ONLY = literal_column("'agent_only'", String)


#: the rule for a non-admin viewer, with bind parameters ``viewer_id`` and
#: ``viewer_type`` (see :func:`viewer_params`), for prepared statements.
VISIBLE_TO_VIEWER: ColumnElement[bool] = _rule(bindparam("viewer_id"), bindparam("viewer_type"))


def viewer_params(viewer: Viewer) -> dict[str, Any]:
    """The values :data:`VISIBLE_TO_VIEWER` needs (admins need none)."""
    return {"viewer_id": viewer.agent_id, "viewer_type": viewer.agent_type}


def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """A WHERE clause selecting the messages ``viewer`` may read."""
    if viewer.is_admin:
        return true()
    return _rule(viewer.agent_id, viewer.agent_type)

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

__all__ = ["viewer_params", "visible"]

# the rule's own constants are written into the SQL, not bound: with only the
# viewer bound, PostgreSQL can cache one generic plan per statement
_PUBLIC = literal_column("'public'", String)
_AGENT_ONLY = literal_column("'agent_only'", String)

#: the rule for a non-admin viewer, with bind parameters ``viewer_id`` and
#: ``viewer_type`` (see :func:`viewer_params`)
_VISIBLE_TO_VIEWER: ColumnElement[bool] = or_(
    messages.c.visibility == _PUBLIC,
    messages.c.sender == bindparam("viewer_id"),
    and_(messages.c.visibility == _AGENT_ONLY, messages.c.sender_type == bindparam("viewer_type")),
)


def visible(admin: bool) -> ColumnElement[bool]:
    """The WHERE clause of a statement built once per shape: everything for an
    admin, else the rule with the viewer's bind parameters."""
    return true() if admin else _VISIBLE_TO_VIEWER


def viewer_params(viewer: Viewer) -> dict[str, Any]:
    """The values the rule needs (an admin's statement ignores them)."""
    return {"viewer_id": viewer.agent_id, "viewer_type": viewer.agent_type}

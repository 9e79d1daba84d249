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

from sqlalchemy import and_, or_, true
from sqlalchemy.sql.elements import ColumnElement

from ..models import Viewer
from ..schema import messages

__all__ = ["visible_to"]


def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """A WHERE clause selecting the messages ``viewer`` may read."""
    if viewer.is_admin:
        return true()
    return or_(
        messages.c.visibility == "public",
        messages.c.sender == viewer.agent_id,
        and_(
            messages.c.visibility == "agent_only",
            messages.c.sender_type == viewer.agent_type,
        ),
    )

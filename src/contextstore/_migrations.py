"""Programmatic Alembic: find the scripts, upgrade, inspect revisions."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

__all__ = ["head_revision", "script_location"]


def script_location() -> Path:
    """The ``migrations`` folder: packaged beside the code, or at the repository root."""
    packaged = Path(__file__).parent / "_migration_scripts"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest revision of the migration scripts (None when there are none)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    try:
        return ScriptDirectory.from_config(config).get_current_head()
    except Exception:
        return None

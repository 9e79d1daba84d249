"""Quarantine: every use of a private name of a driver or of SQLAlchemy.

Nothing outside this package touches an underscore name of aiosqlite,
asyncpg, aiomysql or SQLAlchemy, but legacy's ``_worker_stopped``
(``contextstore/legacy/_db.py``: legacy imports nothing of core). Each module
names the driver versions it was written against, why no public API does the
job, the test that shows it still works, and its canaries in
``tests/dialects/test_driver_shims.py``: tests that fail when upstream fixes
the reason for a shim, or renames a private name a shim uses.
"""

"""Quarantine: every use of a private name of a driver or of SQLAlchemy.

Nothing outside this package touches an underscore name of aiosqlite,
asyncpg, aiomysql or SQLAlchemy. Each module names the driver versions it was
written against, why no public API does the job, and the test that shows it
still works.
"""

"""Where the storefront's SQL differs between PostgreSQL (make test, make serve) and SQLite (make demo)."""
from django.db import connection

# First key of the PostgreSQL advisory locks taken on a session (the second is its key's hash).
SESSION_LOCK_CLASS = 0x5E55


def session_lock(session_key: str) -> None:
    """Inside a transaction: hold the session's lock until it ends, so parallel requests of one
    session change it one at a time. PostgreSQL: a transaction-level advisory lock on the key.
    SQLite: nothing to take; its IMMEDIATE transactions (settings) hold the database's write lock
    from their start, so every writing transaction already runs alone."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [SESSION_LOCK_CLASS, session_key])

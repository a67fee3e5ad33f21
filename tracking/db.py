"""Where tracking's SQL differs between PostgreSQL (make test, make serve) and SQLite (make demo).

Every ``connection.vendor`` branch of tracking's hot paths lives here, so each database's path is
read (and tested: make test runs the suite on both) in one place; services and selectors call these.
The training export (services._event_columns, COPY on PostgreSQL) is the one branch left in
services.py: it is the export's whole body rather than a statement of it.
"""
from __future__ import annotations

import functools
import uuid as uuid_lib

from django.conf import settings
from django.db import DatabaseError, connection

from .models import Event, Visit


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def datetime_param(value):
    """A datetime for a raw statement, as the ORM writes the column. On SQLite that is naive UTC
    text ('2025-01-01 12:00:00'); bound as it is, an aware datetime becomes '2025-01-01 12:00:00+00:00',
    which sorts after the column's text of the same instant (a window's first instant fell out of it).
    PostgreSQL takes the datetime itself."""
    return connection.ops.adapt_datetimefield_value(value)


# --- A visit's recent history (every recommendation reads it) ------------------------------------

# The history statement as a server-side prepared statement on PostgreSQL: planned once per
# connection instead of on every recommendation (pgbench on the bench visit: 0.134 ms -> 0.064 ms
# per statement, SELECT 1 being 0.055). Off with DB_PREPARED_STATEMENTS=false behind a
# transaction-mode pooler (pgbouncer), where a session's prepared statements do not follow it.
HISTORY_STATEMENT = "shop_session_history"


def history_product_ids(visit_uuid: uuid_lib.UUID, limit: int) -> list[int]:
    """Product ids of the visit's ``limit`` most recent history events, newest first: one fixed
    statement joined on the visit's unique uuid (no visit lookup, no ORM compilation)."""
    value = Visit._meta.get_field("uuid").get_db_prep_value(visit_uuid, connection)
    return [row[0] for row in _history_rows(value, limit)]


def history_statement_name(limit: int) -> str:
    # the limit is bound into the prepared plan, so each limit has its own statement
    return f"{HISTORY_STATEMENT}_{int(limit)}"


def _history_rows(visit_value, limit: int) -> list[tuple]:
    sql, params = _history_sql(limit)
    prepared = (is_postgresql() and settings.DB_PREPARED_STATEMENTS
                # outside transactions only: a failed EXECUTE (statement gone) would abort one
                and not connection.in_atomic_block)
    with connection.cursor() as cursor:
        if prepared:
            name = history_statement_name(limit)
            for attempt in (0, 1):
                raw = connection.connection
                done = getattr(connection, "_shop_history_prepared", None)
                if done is None or done[0] is not raw:  # a new connection: nothing prepared on it yet
                    done = connection._shop_history_prepared = (raw, set())
                if name not in done[1]:
                    _history_prepare(cursor, name, limit)
                    done[1].add(name)
                try:
                    cursor.execute(f"EXECUTE {name} (%s)", [visit_value])
                    return cursor.fetchall()
                except DatabaseError as exc:  # deallocated behind our back (DISCARD ALL): prepare again
                    if attempt or getattr(exc.__cause__, "pgcode", None) != "26000":
                        raise
                    connection._shop_history_prepared = None
        cursor.execute(sql, [visit_value, *params])
        return cursor.fetchall()


def _history_prepare(cursor, name: str, limit: int) -> None:
    sql, params = _history_sql(limit)
    try:
        # the constants are bound now (client-side), the visit uuid stays the parameter $1
        cursor.execute(f"PREPARE {name} AS " + sql.replace("%s", "$1", 1), params)
    except DatabaseError as exc:
        if getattr(exc.__cause__, "pgcode", None) != "42P05":  # already prepared on this session
            raise


@functools.cache
def _history_sql(limit: int) -> tuple[str, list]:
    """session_history's order and limit (the most recent ``limit``, newest first here), served by
    the (visit, timestamp, ...) index."""
    from .services import HISTORY_EVENT_TYPES  # why: services imports this module (an import cycle)

    qn = connection.ops.quote_name
    ev, vi = qn(Event._meta.db_table), qn(Visit._meta.db_table)
    types = ", ".join(["%s"] * len(HISTORY_EVENT_TYPES))
    sql = (f"SELECT e.{qn('product_id')} FROM {ev} e JOIN {vi} v ON v.{qn('id')} = e.{qn('visit_id')} "
           f"WHERE v.{qn('uuid')} = %s AND e.{qn('event_type')} IN ({types}) "
           f"ORDER BY e.{qn('timestamp')} DESC, e.{qn('id')} DESC LIMIT %s")
    return sql, [*HISTORY_EVENT_TYPES, int(limit)]


# --- Writing event batches -----------------------------------------------------------------------

EVENT_COLUMNS = ("visit_id", "event_type", "product_id", "source", "position", "model_version",
                 "history_length", "timestamp", "user_id", "is_staff", "trusted")


def events_insert(rows: list[tuple]) -> None:
    """Insert event rows (tuples in EVENT_COLUMNS order)."""
    if not is_postgresql():
        Event.objects.bulk_create([Event(**dict(zip(EVENT_COLUMNS, row))) for row in rows], batch_size=500)
        return
    # One multi-row INSERT built by psycopg2: far less per-field Python work than bulk_create.
    from psycopg2.extras import execute_values

    with connection.cursor() as cursor:
        execute_values(
            cursor.cursor,
            f"INSERT INTO tracking_event ({', '.join(EVENT_COLUMNS)}) VALUES %s",
            rows,
            page_size=500,
        )


def api_batch_in_one_statement() -> bool:
    """Whether :func:`api_batch_insert` is available: PostgreSQL's data-modifying CTE and unnest of
    arrays; on SQLite the API's batches take the ORM path (visit_for_api, events_record_batch)."""
    return is_postgresql()


_API_BATCH_SQL = """
WITH v AS (
    INSERT INTO tracking_visit AS t (uuid, started, last_seen, user_id, is_staff, source)
    VALUES (%(uuid)s, %(now)s, %(last)s, %(user)s, %(staff)s, 'api')
    ON CONFLICT (uuid) DO UPDATE SET last_seen = GREATEST(t.last_seen, EXCLUDED.last_seen)
    RETURNING id, is_staff, user_id
), h AS (
    SELECT count(*) AS n FROM tracking_event
    WHERE visit_id = (SELECT id FROM v) AND event_type IN ('view', 'click')
)
INSERT INTO tracking_event (visit_id, event_type, product_id, source, position, model_version, history_length,
                            timestamp, user_id, is_staff, trusted)
SELECT v.id, e.type, e.product, e.source, e.position, e.model_version, h.n + e.before, e.ts,
       COALESCE(%(user)s, v.user_id), v.is_staff OR %(staff)s, e.trusted
FROM v, h, unnest(%(type)s::varchar[], %(product)s::bigint[], %(source)s::varchar[], %(position)s::integer[],
                  %(model)s::varchar[], %(before)s::integer[], %(ts)s::timestamptz[], %(trusted)s::boolean[])
     AS e(type, product, source, position, model_version, before, ts, trusted)
"""


def api_batch_insert(params: dict) -> None:
    """PostgreSQL only (:func:`api_batch_in_one_statement`): the visit upsert, its history count and
    the batch's insert in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(_API_BATCH_SQL, params)


# --- Popularity ---------------------------------------------------------------------------------

def popularity_refresh_lock(cursor) -> None:
    """Inside the refresh's transaction: one refresh at a time. On PostgreSQL a concurrent one waits
    on an advisory lock, then replaces the table again; SQLite's IMMEDIATE transactions (settings)
    already take the database's write lock when they start."""
    if is_postgresql():
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [0x7472_6B70])

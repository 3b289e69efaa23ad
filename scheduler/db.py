"""Engine, sessions and migrations. Built by the process that needs them, never at import."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from scheduler.errors import Conflict


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the panel read while the dispatcher writes; busy_timeout makes writers
    # queue instead of failing when several threads write at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def bulk_insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows (dicts of the same keys): see bulk_insert_columns."""
    if rows:
        bulk_insert_columns(session, table, {n: [row[n] for row in rows] for n in rows[0]})


def bulk_insert_columns(session: Session, table: Table, columns: dict[str, list[Any]]) -> None:
    """Insert many rows, given as columns of equal length, in one COPY (PostgreSQL) or one
    executemany, each distinct value converted for the database once: SQLAlchemy converts
    every value of every row, and a country's week of broadcasts is 148,000 rows sharing
    fourteen times (measured: 8 s of 14 s spent converting)."""
    names = list(columns)
    if not names or not columns[names[0]]:
        return
    conn = session.connection()
    dialect = conn.dialect
    if dialect.name == "postgresql":  # COPY: several times faster than any INSERT
        texts = [_copy_texts(columns[n]) for n in names]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        listed = ", ".join(f'"{n}"' for n in names)
        with cursor.copy(f'COPY "{table.name}" ({listed}) FROM STDIN') as copy:
            copy.write("".join("\t".join(line) + "\n" for line in zip(*texts, strict=True)))
        return
    compiled = insert(table).values({n: bindparam(n) for n in names}).compile(dialect=dialect)
    order = list(compiled.positiontup or []) if compiled.positional else names
    converted = []
    for name in order:
        values = columns[name]
        convert = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None:
            once = {v: convert(v) for v in set(values) if v is not None}
            values = [None if v is None else once[v] for v in values]
        converted.append(values)
    params: list[Any] = list(zip(*converted, strict=True))
    if not compiled.positional:
        params = [dict(zip(order, p, strict=True)) for p in params]
    conn.exec_driver_sql(str(compiled), params)


def in_ids(session: Session, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN ids`; on PostgreSQL one array parameter (`= ANY(…)`), not one parameter
    per id (a slot start in every commune is 10,000 ids to render, send and parse)."""
    if session.get_bind().dialect.name == "postgresql":
        clause: ColumnElement[bool] = column == any_(literal(list(ids), ARRAY(Integer)))
    else:
        clause = column.in_(ids)
    return clause


@contextmanager
def keys_checked_once(
    session: Session, table: Table, columns: Mapping[str, Sequence[Any]]
) -> Iterator[bool]:
    """Insert many rows of `table` (given as `columns`) with their foreign keys checked
    once per referenced row instead of once per inserted row, when the database allows;
    yields whether it does.

    PostgreSQL checks a foreign key with one query per inserted row and key (148,000
    broadcasts with five keys: 7 s of a core). Here, on PostgreSQL, when the role may set
    `session_replication_role` (a superuser, or `GRANT SET ON PARAMETER
    session_replication_role TO …`, PostgreSQL 15+), each referenced row is locked FOR KEY
    SHARE, as PostgreSQL's own check does (a concurrent delete of it waits for this
    transaction, then fails on the rows made), a missing one raises Conflict, and the
    per-row checks are off until the block ends. The caller locks, the same way, what
    else its statements in the block reference (`key_share`), unless those are rows it
    made in this transaction. Anywhere else the block runs with the usual checks. Only
    the bulk statements belong in the block (no ORM objects: they would be flushed
    unchecked); an error in it must end the transaction (the setting is reset on success
    only)."""
    session.flush()  # nothing pending is written with the checks off
    connection = session.connection()
    allowed = (
        connection.dialect.name == "postgresql"
        and (connection.dialect.server_version_info or (0,)) >= (15,)
        and connection.scalar(
            text("SELECT has_parameter_privilege('session_replication_role', 'SET')")
        )
    )
    if not allowed:
        yield False
        return
    for key in table.foreign_key_constraints:
        (column,) = key.columns
        wanted = {v for v in columns.get(column.name, ()) if v is not None}
        if wanted:
            referred = key.elements[0].column
            found = set(key_share(session, referred, in_ids(session, referred, list(wanted))))
            if wanted - found:
                raise Conflict(
                    f"{referred.table.name} {sorted(wanted - found)[:5]} no longer exist",
                    "gone",
                )
    connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
    yield True
    # Not on an error: the transaction is rolled back, and the setting with it.
    connection.exec_driver_sql("SET LOCAL session_replication_role = DEFAULT")


def key_share(session: Session, column: Any, where: ColumnElement[bool]) -> list[Any]:
    """`column` of the rows `where` selects, locked as a foreign-key check locks them."""
    query = select(column).where(where).with_for_update(read=True, key_share=True)
    return list(session.scalars(query))


def _copy_texts(values: list[Any]) -> list[str]:
    """A column's values in COPY's text format, each distinct value formatted once."""
    texts: dict[Any, str] = {}
    for v in set(values):
        if v is None:
            texts[v] = "\\N"
        elif isinstance(v, bool):
            texts[v] = "t" if v else "f"
        elif isinstance(v, datetime):
            if v.tzinfo is None:
                raise ValueError("naive datetime given to the database; use aware UTC")
            texts[v] = v.isoformat()
        else:
            text = str(v)
            for char, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
                text = text.replace(char, escaped)
            texts[v] = text
    return [texts[v] for v in values]


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises."""
    with factory() as session, session.begin():
        yield session


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "scheduler:migrations")
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    cfg.attributes["engine"] = engine
    return cfg


def one_at_a_time(session: Session, lock_id: int, table: Table) -> None:
    """Make this transaction the only one holding `lock_id` until it ends, before it reads
    anything: on PostgreSQL an advisory transaction lock; on SQLite (one writer) the write
    lock, taken with an UPDATE of no row of `table`."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
    else:
        session.execute(update(table).where(table.c.id == 0).values(id=0))


MIGRATION_LOCK = 7_203_401  # PostgreSQL advisory lock id: one migrating process at a time


class SchemaError(Exception):
    """The database's schema is not the one this Loa was built for."""


def schema_versions(engine: Engine) -> tuple[str | None, str]:
    """(the database's revision, the newest this code knows)."""
    cfg = alembic_config(engine)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head


def require_current(engine: Engine) -> None:
    """Refuse a database whose schema is older (or newer) than this code's."""
    current, head = schema_versions(engine)
    if current != head:
        raise SchemaError(
            f"the database schema is at {current or 'nothing'}, this Loa needs {head}: "
            "run `loa db upgrade` first"
        )


def migrate(engine: Engine) -> None:
    """Bring the database schema to the newest migration. On PostgreSQL under an advisory
    lock, so processes starting together migrate one after the other (the later ones
    find nothing left to do)."""
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), "head")
        return
    with engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK})
        try:
            command.upgrade(alembic_config(engine), "head")
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK})

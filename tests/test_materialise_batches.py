"""A placement for thousands of communes: on PostgreSQL it is made in batches of communes,
two transactions at a time, with the same rows as one transaction would make; a batch
that fails leaves nothing to air, and the scheduler's extension never makes the same rows
meanwhile. BATCH is lowered so that the demo district's 34 communes make four batches."""

import itertools
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.errors import ForeignKeyViolation
from sqlalchemy import func, make_url, select
from sqlalchemy.orm import Session

from scheduler import areas, bulletins, planning, service
from scheduler.auth import Actor
from scheduler.clock import ManualClock
from scheduler.context import Loa, build_loa
from scheduler.db import bulk_insert_columns, keys_checked_once
from scheduler.errors import Conflict
from scheduler.models import (
    Broadcast,
    BroadcastEvent,
    Bulletin,
    Delivery,
    Endpoint,
    Placement,
    Priority,
    Role,
    Slot,
    Status,
)
from tests.conftest import START, THO_SON, Api, make_settings

pytestmark = pytest.mark.both_databases

CENTRE = Actor("user:centre", Role.CENTRE)
WEEK = {"from": "2026-11-27", "to": "2026-12-03"}


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "BATCH", 10)


def week_rule(loa: Loa) -> planning.Rule:
    with loa.transaction() as s:
        slot_ids = tuple(s.scalars(select(Slot.id).order_by(Slot.id)))
    tz = loa.settings.timezone
    first = (loa.now() + timedelta(days=1)).astimezone(tz).date()
    return planning.Rule(slot_ids=slot_ids, date_from=first, date_to=first + timedelta(days=6))


def test_a_placement_made_in_batches_has_every_row_once_and_joins_the_queues(
    api: Api, loa: Loa
) -> None:
    earlier = api.approved_bulletin("Lịch tiêm chủng tuần này.")
    rule = {"slots": [s["id"] for s in api.get("/slots").json], **WEEK}
    r = api.post("/placements", {"bulletin_id": earlier, "rule": rule, "communes": [THO_SON]})
    assert r.status_code == 201, r.json
    bulletin = api.approved_bulletin()
    r = api.post("/placements", {"bulletin_id": bulletin, "rule": rule, "communes": "all"})
    assert r.status_code == 201, r.json
    assert r.json["broadcasts"] == 34 * 2 * 7
    with loa.transaction() as s:
        made = select(Broadcast).where(Broadcast.bulletin_id == bulletin).subquery()
        assert s.scalar(select(func.count(func.distinct(made.c.commune_id)))) == 34
        per_broadcast = s.execute(
            select(
                func.count(func.distinct(Delivery.id)),
                func.count(func.distinct(BroadcastEvent.id)),
                select(func.count())
                .where(Endpoint.commune_id == made.c.commune_id, Endpoint.active.is_(True))
                .scalar_subquery(),
            )
            .select_from(made)
            .outerjoin(Delivery, Delivery.broadcast_id == made.c.id)
            .outerjoin(BroadcastEvent, BroadcastEvent.broadcast_id == made.c.id)
            .group_by(made.c.id, made.c.commune_id)
        ).all()
        assert len(per_broadcast) == 34 * 2 * 7
        assert all(
            deliveries == endpoints and events == 1
            for deliveries, events, endpoints in per_broadcast
        )
        overflow = s.scalar(select(func.count()).where(made.c.overflow.is_(True)))
        tho_son = areas.commune_by_code(s, THO_SON).id
        positions = s.scalars(select(made.c.position).where(made.c.commune_id == tho_son)).all()
    assert r.json["overflow"] == overflow == 0
    assert set(positions) == {2}  # after the vaccination notice placed there first


def test_a_placement_whose_making_fails_leaves_nothing_to_air(
    api: Api, loa: Loa, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulletin = api.approved_bulletin()
    calls = []
    materialise = planning.materialise

    def failing(*args: Any, **kw: Any) -> planning.Materialised:
        calls.append(args)
        if len(args) < 6 or len(calls) == 3:  # one transaction, or the third batch
            raise RuntimeError("the database's disk is full")
        return materialise(*args, **kw)

    monkeypatch.setattr(planning, "materialise", failing)
    with pytest.raises(RuntimeError, match="disk is full"):
        service.place(loa, CENTRE, bulletin, planning.Targets(all=True), week_rule(loa))
    with loa.transaction() as s:
        active = s.scalar(
            select(func.count()).where(
                Placement.bulletin_id == bulletin, Placement.cancelled_at.is_(None)
            )
        )
        to_air = s.scalar(
            select(func.count()).where(
                Broadcast.bulletin_id == bulletin,
                Broadcast.status.in_([Status.SCHEDULED.value, Status.DELIVERED.value]),
            )
        )
    assert active == 0 and to_air == 0


@pytest.fixture
def pg_loa(postgres: Any, tmp_path: Path, clock: ManualClock) -> Iterator[Loa]:
    url = postgres.new_database("loa_template")
    ctx = build_loa(make_settings(tmp_path, LOA_DATABASE_URL=url), clock=clock)
    yield ctx
    ctx.close()


def agents_everywhere(loa: Loa) -> None:
    """An agent endpoint in every commune, so that every broadcast has a delivery."""
    with loa.transaction() as s:
        s.add_all(
            Endpoint(commune_id=c.id, name="Cụm 1", kind="agent", created_at=loa.now())
            for c in areas.communes(s)
        )


def rendered_bulletin(loa: Loa) -> int:
    with loa.transaction() as s:
        bulletin = bulletins.create_bulletin(
            s, CENTRE, title="CCHC", text="Lịch tiếp công dân.", topic="CCHC",
            priority=Priority.NORMAL, now=loa.now(), max_chars=20000,
        )  # fmt: skip
        bulletins.approve(s, Actor("user:admin", Role.ADMIN), bulletin, loa.now())
    service.render_bulletin(loa, CENTRE, bulletin.id)
    return bulletin.id


def test_the_hourly_extension_leaves_a_placement_being_made_in_batches_alone(
    pg_loa: Loa,
) -> None:
    loa = pg_loa
    bulletin_id = rendered_bulletin(loa)
    with loa.transaction() as s:
        bulletin = bulletins.get_bulletin(s, bulletin_id)
        placement = planning.create_placement(
            s, CENTRE, bulletin, planning.Targets(all=True), week_rule(loa), None, loa.now()
        )
        placement_id = placement.id
    with loa.engine.connect() as held:
        planning.lock_placement(held, placement_id)
        made = service.extend_plan(loa)  # meanwhile: not a row of the held placement
        assert not made.created
        planning.unlock_placement(held, placement_id)
        held.commit()
    assert len(service.extend_plan(loa).created) == 34 * 2 * 7


def test_batches_are_even_so_that_none_runs_alone_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert [len(b) for b in service.batches(list(range(34)))] == [9, 9, 9, 7]
    monkeypatch.setattr(service, "BATCH", 2500)
    country = list(range(10_599))
    made = service.batches(country)
    assert [len(b) for b in made] == [1767] * 5 + [1764]
    assert [c for b in made for c in b] == country
    assert service.batches(list(range(2501))) == [list(range(1251)), list(range(1251, 2501))]


def test_batches_lay_out_their_rows_one_at_a_time_and_write_side_by_side(
    pg_loa: Loa, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One batch computes while the others write: the stretches from a batch's start to
    its rows laid out never overlap, and every batch is made."""
    loa = pg_loa
    bulletin_id = rendered_bulletin(loa)
    stretches: list[tuple[float, float]] = []
    materialise = planning.materialise

    def timed(*args: Any, laid_out: Any, **kw: Any) -> planning.Materialised:
        start = time.monotonic()

        def done() -> None:
            stretches.append((start, time.monotonic()))
            time.sleep(0.05)  # would let another batch's computing overlap, if it could
            laid_out()

        return materialise(*args, laid_out=done, **kw)

    monkeypatch.setattr(planning, "materialise", timed)
    placed = service.place(loa, CENTRE, bulletin_id, planning.Targets(all=True), week_rule(loa))
    assert placed.broadcasts == 34 * 2 * 7 and placed.overflow == 0
    assert len(stretches) == 4
    stretches.sort()
    assert all(end <= later for (_, end), (later, _) in itertools.pairwise(stretches))


# --- foreign keys checked once per referenced row (PostgreSQL) ---------------------------


def broadcast_columns(s: Session, rendered: int, **changed: Any) -> dict[str, list[Any]]:
    """One broadcast of a rendered bulletin in the demo's first slot in Thọ Sơn, as
    columns."""
    bulletin = s.get_one(Bulletin, rendered)
    row = {
        "bulletin_id": bulletin.id, "audio_id": bulletin.audio_id, "priority": "normal",
        "status": Status.SCHEDULED.value, "created_by": "user:centre", "created_at": START,
        "commune_id": areas.commune_by_code(s, THO_SON).id, "scheduled_at": START,
        "slot_id": s.scalar(select(func.min(Slot.id))), "overflow": False,
    } | changed  # fmt: skip
    return {name: [value] for name, value in row.items()}


def test_rows_made_with_keys_checked_once_hold_what_they_reference_until_commit(
    pg_loa: Loa, postgres: Any
) -> None:
    """As PostgreSQL's own check would: a delete of a referenced row waits (here: gives
    up after its lock timeout) while the rows are not committed."""
    loa = pg_loa
    bulletin_id = rendered_bulletin(loa)
    with loa.transaction() as s:
        columns = broadcast_columns(s, bulletin_id)
        with keys_checked_once(s, Broadcast.__table__, columns) as once:  # type: ignore[arg-type]
            if not once:
                pytest.skip("PostgreSQL before 15: no GRANT SET ON PARAMETER")
            bulk_insert_columns(s, Broadcast.__table__, columns)  # type: ignore[arg-type]
        with psycopg.connect(dsn(postgres, loa.engine.url.database), autocommit=True) as other:
            other.execute("SET lock_timeout = '200ms'")
            for table, key in [("slots", "slot_id"), ("audio_assets", "audio_id")]:
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    other.execute(f"DELETE FROM {table} WHERE id = %s", columns[key])


def test_an_endpoint_whose_deliveries_are_being_made_is_held_until_they_are_committed(
    pg_loa: Loa, postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    loa = pg_loa
    agents_everywhere(loa)
    bulletin_id = rendered_bulletin(loa)
    insert = planning._insert_deliveries_and_events
    tried = []

    def then_delete_an_endpoint(*args: Any) -> list[int]:
        made = insert(*args)
        communes = list({w.commune_id for w in args[1]})  # of the broadcasts made
        with psycopg.connect(dsn(postgres, loa.engine.url.database), autocommit=True) as other:
            other.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM endpoints WHERE commune_id = ANY(%s)", [communes])
        tried.append(len(made))
        return made

    monkeypatch.setattr(planning, "_insert_deliveries_and_events", then_delete_an_endpoint)
    service.place(loa, CENTRE, bulletin_id, planning.Targets(all=True), week_rule(loa))
    assert sum(tried) == 34 * 2 * 7


def test_a_row_whose_reference_is_gone_is_refused_and_nothing_is_written(pg_loa: Loa) -> None:
    loa = pg_loa
    bulletin_id = rendered_bulletin(loa)
    gone = pytest.raises(Conflict, match="slots \\[999999\\] no longer exist")
    with gone, loa.transaction() as s:
        made_first = broadcast_columns(s, bulletin_id)  # an earlier batch of the transaction
        bulk_insert_columns(s, Broadcast.__table__, made_first)  # type: ignore[arg-type]
        columns = broadcast_columns(s, bulletin_id, slot_id=999_999)
        with keys_checked_once(s, Broadcast.__table__, columns):  # type: ignore[arg-type]
            raise AssertionError("not reached")
    with loa.transaction() as s:
        assert s.scalar(select(func.count()).where(Broadcast.bulletin_id == bulletin_id)) == 0


def test_after_the_block_every_row_is_checked_again(pg_loa: Loa) -> None:
    loa = pg_loa
    bulletin_id = rendered_bulletin(loa)
    refused = pytest.raises(ForeignKeyViolation, match="fk_broadcasts_bulletin_id_bulletins")
    with refused, loa.transaction() as s:
        with keys_checked_once(s, Broadcast.__table__, broadcast_columns(s, bulletin_id)):  # type: ignore[arg-type]
            pass
        bad = broadcast_columns(s, bulletin_id, bulletin_id=999_999)
        bulk_insert_columns(s, Broadcast.__table__, bad)  # type: ignore[arg-type]


def test_a_role_that_may_not_skip_row_checks_makes_the_same_rows(
    pg_loa: Loa, postgres: Any, tmp_path: Path, clock: ManualClock
) -> None:
    """On a copy of the same database, a role without GRANT SET ON PARAMETER
    session_replication_role places the same week, each row checked by PostgreSQL."""
    url = make_url(postgres.new_database("loa_template")).set(username="plain")
    with psycopg.connect(dsn(postgres, url.database), autocommit=True) as admin:
        admin.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'plain') "
            "THEN CREATE ROLE plain LOGIN; END IF; END $$"
        )
        for kind in ["TABLES", "SEQUENCES"]:
            admin.execute(f"GRANT ALL ON ALL {kind} IN SCHEMA public TO plain")
    settings = make_settings(tmp_path / "plain", LOA_DATABASE_URL=str(url))
    plain = build_loa(settings, clock=clock)
    made = {}
    try:
        for loa in [pg_loa, plain]:
            agents_everywhere(loa)
            bulletin_id = rendered_bulletin(loa)
            rule = week_rule(loa)
            placed = service.place(loa, CENTRE, bulletin_id, planning.Targets(all=True), rule)
            with loa.transaction() as s:
                user = s.connection().exec_driver_sql("SELECT current_user").scalar()
                may = s.connection().exec_driver_sql(
                    "SELECT has_parameter_privilege('session_replication_role', 'SET')"
                )
                assert may.scalar() == (user == "postgres")  # plain: checked row by row
                rows = s.execute(
                    select(*WEEK_ROWS)
                    .join(Delivery, Delivery.broadcast_id == Broadcast.id)
                    .join(BroadcastEvent, BroadcastEvent.broadcast_id == Broadcast.id)
                ).all()
            made[user] = (placed.broadcasts, sorted(rows))
    finally:
        plain.close()
    assert made["postgres"][0] == len(made["postgres"][1]) == 34 * 2 * 7
    assert made["plain"] == made["postgres"]


WEEK_ROWS = (
    Broadcast.commune_id,
    Broadcast.slot_at,
    Broadcast.position,
    Delivery.endpoint_id,
    BroadcastEvent.to_status,
)


def dsn(postgres: Any, database: str | None) -> str:
    """libpq's connection string for this database, as the superuser."""
    return f"host=127.0.0.1 port={postgres.port} user=postgres dbname={database}"

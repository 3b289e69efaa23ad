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

import pytest
from sqlalchemy import func, select

from scheduler import areas, bulletins, planning, service
from scheduler.auth import Actor
from scheduler.clock import ManualClock
from scheduler.context import Loa, build_loa
from scheduler.models import (
    Broadcast,
    BroadcastEvent,
    Delivery,
    Endpoint,
    Placement,
    Priority,
    Role,
    Slot,
    Status,
)
from tests.conftest import THO_SON, Api, make_settings

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

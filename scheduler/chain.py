"""The tamper-evident as-run log: every history row chained by hash to the one before.

History rows (`BroadcastEvent`: each status change and confirmation) are written as
they happen, by any process, in any number. A single sealer (the scheduler's job, and
`loa verify` before it checks) takes the rows not sealed yet in id order and gives each
a sequence number and a digest: SHA-256 over the digest before it, the row's own facts,
and its broadcast's facts at sealing time (commune, scheduled time, audio SHA-256,
status, start, end, confirmer, confirmation, reason). A broadcast's facts are final once
its status is; so `verify` checks three things, reading the database itself (an edit made
straight in the database file is caught): every sealed row's digest follows from the one
before (an edited or inserted row breaks it), the sequence has no gap (a deleted row),
and each finished broadcast still has the facts its last sealed row recorded.

Sealing runs under a lock (PostgreSQL: an advisory transaction lock; SQLite: its one
writer), so the chain has one order whichever process seals.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from scheduler.db import one_at_a_time
from scheduler.models import Area, AudioAsset, Broadcast, BroadcastEvent
from scheduler.status import TERMINAL

CHAIN_LOCK = 7_203_402  # PostgreSQL advisory lock id: one sealer at a time
GENESIS = "0" * 64
BATCH = 5000

EVENT_COLUMNS = (
    BroadcastEvent.id,
    BroadcastEvent.broadcast_id,
    BroadcastEvent.delivery_id,
    BroadcastEvent.at,
    BroadcastEvent.from_status,
    BroadcastEvent.to_status,
    BroadcastEvent.actor,
    BroadcastEvent.reason,
)
FACT_COLUMNS = (
    Broadcast.id,
    Area.code,
    Broadcast.scheduled_at,
    AudioAsset.sha256,
    Broadcast.status,
    Broadcast.started_at,
    Broadcast.finished_at,
    Broadcast.confirmed_by,
    Broadcast.confirmation,
    Broadcast.reason,
)


def _text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _facts(session: Session, broadcast_ids: Sequence[int]) -> dict[int, list[Any]]:
    """The facts of these broadcasts as they are now, in a form that hashes the same
    on every backend."""
    rows = session.execute(
        select(*FACT_COLUMNS)
        .join(Area, Broadcast.commune_id == Area.id)
        .join(AudioAsset, Broadcast.audio_id == AudioAsset.id)
        .where(Broadcast.id.in_(set(broadcast_ids)))
    )
    return {row[0]: [_text(v) for v in row] for row in rows}


def digest(previous: str, seq: int, event: Sequence[Any], facts: str) -> str:
    """A record's digest: the previous digest, its place, its own facts, and its
    broadcast's facts as stored (a JSON text, hashed as it is)."""
    # repr of a tuple of str, int and None is unambiguous (quotes and escapes) and fast.
    record = repr((previous, seq, *(_text(v) for v in event)))
    return hashlib.sha256(f"{record}\n{facts}".encode()).hexdigest()


def head(session: Session) -> tuple[int, str]:
    """The last sealed row's sequence number and digest ((0, GENESIS) when none)."""
    row = session.execute(
        select(BroadcastEvent.seq, BroadcastEvent.digest)
        .where(BroadcastEvent.seq.is_not(None))
        .order_by(BroadcastEvent.seq.desc())
        .limit(1)
    ).first()
    if row is None or row.seq is None or row.digest is None:
        return 0, GENESIS
    return row.seq, row.digest


def seal(session: Session) -> int:
    """Seal the history rows not sealed yet (up to BATCH); returns how many. The caller
    commits; call again while it returns BATCH."""
    one_at_a_time(session, CHAIN_LOCK, BroadcastEvent.__table__)  # type: ignore[arg-type]
    seq, previous = head(session)
    events = session.execute(
        select(*EVENT_COLUMNS)
        .where(BroadcastEvent.seq.is_(None))
        .order_by(BroadcastEvent.id)
        .limit(BATCH)
    ).all()
    if not events:
        return 0
    facts = {
        b_id: json.dumps(known, ensure_ascii=False)
        for b_id, known in _facts(session, [e.broadcast_id for e in events]).items()
    }
    sealed = []
    for event in events:
        seq += 1
        known = facts[event.broadcast_id]
        previous = digest(previous, seq, event, known)
        sealed.append({"e_id": event.id, "seq": seq, "digest": previous, "facts": known})
    table = BroadcastEvent.__table__
    session.execute(
        update(table)  # type: ignore[arg-type]
        .where(table.c.id == bindparam("e_id"))
        .values(seq=bindparam("seq"), digest=bindparam("digest"), facts=bindparam("facts")),
        sealed,
    )
    return len(sealed)


def seal_all(transaction: Any) -> int:
    """Seal everything, a batch per transaction (`transaction`: Loa.transaction)."""
    total = 0
    while True:
        with transaction() as session:
            done = seal(session)
        total += done
        if done < BATCH:
            return total


@dataclass(frozen=True)
class Verdict:
    ok: bool
    sealed: int
    unsealed: int
    head: str
    problem: str | None = None


def _sealed(session: Session) -> Iterator[Any]:
    last = 0
    while True:
        rows = session.execute(
            select(*EVENT_COLUMNS, BroadcastEvent.seq, BroadcastEvent.digest, BroadcastEvent.facts)
            .where(BroadcastEvent.seq > last)
            .order_by(BroadcastEvent.seq)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(session: Session, expect: str | None = None) -> Verdict:
    """Check the chain and the finished broadcasts' facts; the first problem is named.
    `expect`: a head printed earlier (in a report), which must still be in the chain:
    the chain's tail deleted and sealed again would otherwise go unseen."""
    previous, expected = GENESIS, 1
    last_facts: dict[int, str] = {}
    seen = expect is None
    for row in _sealed(session):
        event = row[: len(EVENT_COLUMNS)]
        if row.seq != expected:
            return _broken(session, previous, f"record {expected} is missing (deleted)")
        if row.facts is None or digest(previous, row.seq, event, row.facts) != row.digest:
            return _broken(
                session,
                previous,
                f"record {row.seq} (history row {row.id} of broadcast {row.broadcast_id}) "
                "was edited or inserted",
            )
        previous, expected = row.digest, expected + 1
        last_facts[row.broadcast_id] = row.facts
        seen = seen or row.digest == expect
    if not seen:
        return _broken(
            session, previous, f"the head {expect} is not in the chain: records were removed"
        )
    now = _facts(session, list(last_facts))
    for broadcast_id, recorded in last_facts.items():
        current = now.get(broadcast_id)
        if current is None:
            return _broken(session, previous, f"broadcast {broadcast_id} was deleted")
        if current[4] in TERMINAL and json.dumps(current, ensure_ascii=False) != recorded:
            return _broken(
                session,
                previous,
                f"broadcast {broadcast_id} was edited after its last record: it holds "
                f"{_diff(json.loads(recorded), current)}",
            )
    return Verdict(True, expected - 1, _unsealed(session), previous)


def _diff(recorded: list[Any], current: list[Any]) -> str:
    names = [c.key for c in FACT_COLUMNS]
    return "; ".join(
        f"{name} {now!r}, recorded {then!r}"
        for name, then, now in zip(names, recorded, current, strict=True)
        if then != now
    )


def _unsealed(session: Session) -> int:
    count = session.scalar(
        select(func.count()).select_from(BroadcastEvent).where(BroadcastEvent.seq.is_(None))
    )
    return count or 0


def _broken(session: Session, previous: str, problem: str) -> Verdict:
    return Verdict(False, 0, _unsealed(session), previous, problem)

"""The broadcast lifecycle: allowed moves, aggregation over deliveries, and their history rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from scheduler.models import Broadcast, BroadcastEvent, Delivery, Status

S = Status
ROWS_LOCKED = "loa.rows_locked"  # session.info key set by lock_for_moves
TERMINAL = frozenset({S.PLAYED, S.PARTIAL, S.INTERRUPTED, S.FAILED, S.MISSED, S.CANCELLED})
# What a device may prove played, even with its "started" lost (an agent killed mid-item
# reports the interruption when it restarts).
_PROOF = frozenset({S.PLAYING, S.PLAYED, S.INTERRUPTED})

# A device's proof of play is believed even after the server gave up on it (store-and-forward).
DELIVERY_MOVES: dict[str, frozenset[str]] = {
    S.SCHEDULED: _PROOF | {S.DELIVERED, S.FAILED, S.MISSED, S.CANCELLED},
    S.DELIVERED: _PROOF | {S.FAILED, S.MISSED, S.CANCELLED},
    S.PLAYING: frozenset({S.PLAYED, S.INTERRUPTED, S.FAILED}),
    S.FAILED: _PROOF,
    S.MISSED: _PROOF,
    S.CANCELLED: _PROOF,
    S.PLAYED: frozenset(),
    S.INTERRUPTED: frozenset(),
}


def can_move(old: str, new: str) -> bool:
    return new in DELIVERY_MOVES.get(old, frozenset())


def aggregate(statuses: Sequence[str]) -> str | None:
    """A broadcast's status from its deliveries' statuses; None when it has no delivery."""
    live = [s for s in statuses if s != S.CANCELLED]
    if not statuses:
        return None
    if not live:
        return S.CANCELLED
    if S.PLAYING in live:
        return S.PLAYING
    if all(s in TERMINAL for s in live):
        if all(s == S.PLAYED for s in live):
            return S.PLAYED
        if S.PLAYED in live:
            return S.PARTIAL
        if S.INTERRUPTED in live:
            return S.INTERRUPTED
        if all(s == S.MISSED for s in live):
            return S.MISSED
        return S.FAILED
    if any(s in (S.PLAYED, S.INTERRUPTED) for s in live):
        return S.PLAYING  # some endpoints are done, others have not reported yet
    open_ = [s for s in live if s not in TERMINAL]
    return S.DELIVERED if all(s == S.DELIVERED for s in open_) else S.SCHEDULED


def _history(
    session: Session,
    row: Broadcast | Delivery,
    new: str,
    at: datetime,
    actor: str,
    reason: str | None,
) -> bool:
    """Make a status change of a broadcast or a delivery and write its history row. The
    change is a conditional UPDATE (only from the status this process read): it returns
    False, writing nothing, when another process moved the row first. Rows taken with
    lock_for_moves can move no other way, so their change goes with the flush."""
    old = row.status
    if session.info.get(ROWS_LOCKED):
        row.status = new
    else:
        if row in session.new:
            session.flush()  # a row made in this transaction: insert it first
        table: Table = type(row).__table__  # type: ignore[assignment]
        with session.no_autoflush:  # a flush per move made report batches 4x slower
            moved = session.execute(
                update(table).where(table.c.id == row.id, table.c.status == old).values(status=new)
            )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            session.refresh(row)
            return False
        set_committed_value(row, "status", new)
    delivery_id = row.id if isinstance(row, Delivery) else None
    broadcast_id = row.broadcast_id if isinstance(row, Delivery) else row.id
    session.add(
        BroadcastEvent(
            broadcast_id=broadcast_id, delivery_id=delivery_id, at=at, from_status=old,
            to_status=new, actor=actor, reason=reason,
        )
    )  # fmt: skip
    return True


def lock_for_moves(session: Session, delivery_ids: Sequence[int]) -> None:
    """Before reading the deliveries a batch will move (and their broadcasts), make sure
    no other process can move them until this transaction ends, so the moves can be
    written together with its flush instead of one conditional UPDATE each (a batch of
    10,000 reports is then 2 statements, not 20,000). PostgreSQL: the rows are locked,
    in id order. SQLite: one write statement takes the database's only write lock, and
    every read after it sees the latest commit."""
    ids = sorted(set(delivery_ids))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Broadcast.id)
            .where(Broadcast.id.in_(select(Delivery.broadcast_id).where(Delivery.id.in_(ids))))
            .order_by(Broadcast.id)
            .with_for_update()
        )
        session.execute(
            select(Delivery.id).where(Delivery.id.in_(ids)).order_by(Delivery.id).with_for_update()
        )
    else:
        session.execute(update(Delivery).where(Delivery.id == 0).values(status=Delivery.status))
    session.info[ROWS_LOCKED] = True


def move_broadcast(
    session: Session, broadcast: Broadcast, new: str, at: datetime, actor: str, reason: str | None
) -> None:
    """Set a broadcast's status and write the history row."""
    if broadcast.status != new:
        _history(session, broadcast, new, at, actor, reason)


def cancel_moves(
    session: Session, broadcast: Broadcast, at: datetime, actor: str, reason: str
) -> None:
    """Cancel a broadcast not started: each delivery (the broadcast follows them), or the
    broadcast itself when it has none."""
    for d in broadcast.deliveries:
        move_delivery(session, d, S.CANCELLED, at, actor, reason)
    if not broadcast.deliveries:
        move_broadcast(session, broadcast, S.CANCELLED, at, actor, reason)


def refresh_broadcast(session: Session, broadcast: Broadcast, at: datetime, actor: str) -> None:
    """Recompute a broadcast's status and play times from its deliveries."""
    deliveries = broadcast.deliveries
    new = aggregate([d.status for d in deliveries])
    starts = [d.started_at for d in deliveries if d.started_at is not None]
    broadcast.started_at = min(starts) if starts else broadcast.started_at
    if new in TERMINAL:
        ends = [d.finished_at for d in deliveries if d.finished_at is not None]
        broadcast.finished_at = max(ends) if ends else broadcast.finished_at
    if new is None:
        return
    if broadcast.confirmation == "operator" and new not in (S.PLAYING, S.PLAYED, S.PARTIAL):
        return  # the operator's word stands unless a device proves the broadcast played
    move_broadcast(session, broadcast, new, at, actor, None)


def move_delivery(
    session: Session,
    delivery: Delivery,
    new: str,
    at: datetime,
    actor: str,
    reason: str | None = None,
) -> bool:
    """Move a delivery if the lifecycle allows it, write history, refresh its broadcast."""
    if not can_move(delivery.status, new):
        return False
    if not _history(session, delivery, new, at, actor, reason):
        return False
    if new in (S.FAILED, S.MISSED, S.INTERRUPTED, S.CANCELLED):
        delivery.error = reason
    refresh_broadcast(session, delivery.broadcast, at, actor)
    return True

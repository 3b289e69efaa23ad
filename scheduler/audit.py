"""The audit log: one row per change a person (or token) made, and per export."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.auth import Actor
from scheduler.models import AuditEntry, Base, Role

PAGE = 100


def record(
    session: Session,
    actor: Actor,
    action: str,
    target: Base | str,
    now: datetime,
    detail: str | None = None,
) -> None:
    """Log that `actor` did `action` to `target` (a row, or a kind of thing: "export")."""
    if isinstance(target, str):
        kind, target_id = target, None
    else:
        if getattr(target, "id", None) is None:
            session.flush()  # a row made in this transaction: its id first
        kind, target_id = type(target).__tablename__.removesuffix("s"), target.id  # type: ignore[attr-defined]
    session.add(
        AuditEntry(
            at=now, actor=actor.name, action=action, target=kind, target_id=target_id,
            detail=detail,
        )
    )  # fmt: skip


def entries(session: Session, actor: Actor, *, who: str = "", page: int = 1) -> list[AuditEntry]:
    """The newest entries first (administrators only), optionally of one actor."""
    actor.require(Role.ADMIN)
    q = select(AuditEntry).order_by(AuditEntry.id.desc())
    if who:  # "trungtam" finds the user, "token:x" a token, as written
        q = q.where(AuditEntry.actor.in_((who, f"user:{who}")))
    return list(session.scalars(q.offset((max(page, 1) - 1) * PAGE).limit(PAGE)))

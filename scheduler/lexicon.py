"""The centre's own words for the normalizer: local abbreviations, place names."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.auth import MANAGERS, Actor
from scheduler.errors import InvalidInput, NotFound
from scheduler.models import LexiconEntry

MAX_TERM = 80
MAX_SPOKEN = 300


def entries(session: Session) -> list[LexiconEntry]:
    return list(session.scalars(select(LexiconEntry).order_by(LexiconEntry.term)))


def as_mapping(session: Session) -> dict[str, str]:
    """term -> spoken form, as the normalizer takes it."""
    return {e.term: e.spoken for e in entries(session)}


def put(session: Session, actor: Actor, term: str, spoken: str, now: datetime) -> LexiconEntry:
    """Add a word or change how it is read."""
    actor.require(*MANAGERS)
    term, spoken = term.strip(), " ".join(spoken.split())
    if not term or len(term) > MAX_TERM or "\n" in term:
        raise InvalidInput(f"a term is 1 to {MAX_TERM} characters on one line", "invalid_term")
    if not spoken or len(spoken) > MAX_SPOKEN:
        raise InvalidInput(f"say how it is read, in 1 to {MAX_SPOKEN} characters", "invalid_term")
    if any(ch.isdigit() for ch in spoken):
        raise InvalidInput("write the spoken form in words, without digits", "invalid_term")
    entry = session.scalar(select(LexiconEntry).where(LexiconEntry.term == term))
    if entry is None:
        entry = LexiconEntry(term=term, spoken=spoken, created_by=actor.name, created_at=now)
        session.add(entry)
    else:
        entry.spoken, entry.created_by, entry.created_at = spoken, actor.name, now
    session.flush()
    audit.record(session, actor, "put", entry, now, f"{term} = {spoken}")
    return entry


def remove(session: Session, actor: Actor, term: str, now: datetime) -> None:
    actor.require(*MANAGERS)
    entry = session.scalar(select(LexiconEntry).where(LexiconEntry.term == term))
    if entry is None:
        raise NotFound(f"the lexicon has no term {term!r}", "unknown_term")
    audit.record(session, actor, "remove", entry, now, term)
    session.delete(entry)

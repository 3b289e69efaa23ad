"""People who log in to the panel: created, disabled, given a new password, assigned
communes by the administrator. An operator has one or more communes; the first is where
their pages open."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.areas import commune_by_code
from scheduler.auth import Actor, hash_password, parse_role
from scheduler.errors import Conflict, InvalidInput, NotFound
from scheduler.models import Role, User

MIN_PASSWORD = 8


def _password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"a password has at least {MIN_PASSWORD} characters", "password_too_short"
        )
    return hash_password(password)


def _assign(session: Session, user: User, codes: Sequence[str]) -> None:
    communes = [commune_by_code(session, code) for code in dict.fromkeys(codes)]
    if user.role == Role.OPERATOR and not communes:
        raise InvalidInput("an operator needs at least one commune", "commune_required")
    user.commune = communes[0] if communes else None
    user.communes = communes


def listing(session: Session, actor: Actor) -> list[User]:
    actor.require(Role.ADMIN)
    return list(session.scalars(select(User).order_by(User.username)))


def get_user(session: Session, actor: Actor, user_id: int) -> User:
    actor.require(Role.ADMIN)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user has the id {user_id}", "unknown_user")
    return user


def create_user(
    session: Session,
    actor: Actor | None,
    *,
    username: str,
    display_name: str,
    password: str,
    role: str,
    communes: Sequence[str] = (),
    now: datetime,
) -> User:
    """A new user (`actor` None: the system seeding a new district)."""
    if actor is not None:
        actor.require(Role.ADMIN)
    username, display_name = username.strip(), display_name.strip()
    if not username or len(username) > 80 or not username.isprintable() or " " in username:
        raise InvalidInput("a user name is 1 to 80 characters without spaces", "invalid_name")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"the user name {username!r} is taken", "duplicate_user")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=_password(password),
        role=parse_role(role).value,
        language="vi",
        active=True,
        created_at=now,
    )
    _assign(session, user, communes)
    session.add(user)
    session.flush()
    if actor is not None:
        audit.record(session, actor, "create", user, now, f"{username} ({user.role})")
    return user


def update_user(
    session: Session,
    actor: Actor,
    user_id: int,
    *,
    display_name: str,
    role: str,
    communes: Sequence[str],
    active: bool,
    now: datetime,
) -> User:
    """Change a user's name, role, communes or whether they may log in."""
    user = get_user(session, actor, user_id)
    if user.username == actor.name.removeprefix("user:") and (not active or role != "admin"):
        raise Conflict("an administrator cannot lock themselves out", "own_account")
    user.display_name = display_name.strip() or user.username
    user.role = parse_role(role).value
    user.active = active
    _assign(session, user, communes)
    codes = ", ".join(c.code for c in user.communes) or "-"
    state = "active" if active else "disabled"
    audit.record(session, actor, "edit", user, now, f"{user.role}, {state}, communes {codes}")
    return user


def reset_password(
    session: Session, actor: Actor, user_id: int, password: str, now: datetime
) -> User:
    user = get_user(session, actor, user_id)
    user.password_hash = _password(password)
    audit.record(session, actor, "reset_password", user, now, user.username)
    return user

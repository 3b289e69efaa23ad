"""Who is acting: users (panel), API tokens (clients) and endpoint tokens (agents)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from scheduler.errors import Forbidden, InvalidInput, Unauthorized
from scheduler.models import ApiToken, Area, Endpoint, LoginAttempt, Role, User

MANAGERS = (Role.ADMIN, Role.CENTRE)
APPROVERS = (Role.ADMIN, Role.CENTRE, Role.APPROVER)


@dataclass(frozen=True)
class Actor:
    """A person or client acting on Loa; an operator is bound to one or more communes
    (the first is where their pages open)."""

    name: str
    role: Role
    commune_id: int | None = None
    other_communes: frozenset[int] = frozenset()

    @property
    def communes(self) -> frozenset[int]:
        first = frozenset() if self.commune_id is None else frozenset({self.commune_id})
        return first | self.other_communes

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(f"{self.name} ({self.role}) may not do this")

    def require_commune(self, commune_id: int) -> None:
        """Operators act only on their own communes."""
        if self.role == Role.OPERATOR and commune_id not in self.communes:
            raise Forbidden(f"{self.name} may act only on their own communes")


@dataclass(frozen=True)
class EndpointPrincipal:
    endpoint_id: int
    name: str


def hash_password(password: str) -> str:
    return generate_password_hash(password)  # werkzeug's scrypt, salted


def check_password(password: str, stored: str) -> bool:
    """Werkzeug's hashes, and the scrypt$salt$digest ones Loa stored before it."""
    scheme, _, rest = stored.partition("$")
    if scheme != "scrypt":
        return check_password_hash(stored, password)
    salt_hex, _, digest_hex = rest.partition("$")
    try:
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return hmac.compare_digest(digest.hex(), digest_hex)


def new_token() -> tuple[str, str]:
    """A fresh bearer token and the hash that is stored instead of it."""
    token = "loa_" + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput(
            f"unknown role {value!r}; use one of {', '.join(r.value for r in Role)}", "invalid_role"
        ) from None


def create_token(
    session: Session, name: str, role: Role, commune: Area | None, now: datetime
) -> str:
    """Store a new API token and return it (only its hash is kept)."""
    if not name.strip():
        raise InvalidInput("a token needs a name", "invalid_name")
    if role == Role.OPERATOR and commune is None:
        raise InvalidInput("an operator token needs --commune", "commune_required")
    token, hashed = new_token()
    session.add(
        ApiToken(
            name=name.strip(),
            role=role.value,
            commune_id=commune.id if commune else None,
            token_hash=hashed,
            created_at=now,
        )
    )
    return token


def tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int, now: datetime) -> ApiToken:
    """Stop an API token from working (its row stays, with when it was revoked)."""
    api = session.get(ApiToken, token_id)
    if api is None:
        raise InvalidInput(f"no API token has the id {token_id}", "unknown_token")
    api.revoked_at = api.revoked_at or now
    return api


def authenticate(session: Session, token: str) -> Actor | EndpointPrincipal:
    """The principal behind a bearer token; raises Unauthorized."""
    hashed = token_hash(token)
    api = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hashed, ApiToken.revoked_at.is_(None))
    )
    if api is not None:
        return Actor(f"token:{api.name}", Role(api.role), api.commune_id)
    endpoint = session.scalar(
        select(Endpoint).where(Endpoint.token_hash == hashed, Endpoint.active.is_(True))
    )
    if endpoint is not None:
        return EndpointPrincipal(endpoint.id, endpoint.name)
    raise Unauthorized("the token is unknown or revoked", "invalid_token")


def user_actor(user: User) -> Actor:
    others = frozenset(c.id for c in user.communes) - {user.commune_id}
    return Actor(f"user:{user.username}", Role(user.role), user.commune_id, others)


def login(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is None or not check_password(password, user.password_hash):
        return None
    return user


# Password guessing: LOGIN_LIMIT failures for one username, or from one client address,
# within LOGIN_WINDOW refuse every login for LOGIN_WINDOW after the last of them.
LOGIN_LIMIT = 5
LOGIN_WINDOW = timedelta(minutes=15)


def login_key(username: str) -> str:
    return username.strip().lower()[:120]


def login_locked_until(
    session: Session, username: str, address: str, now: datetime
) -> datetime | None:
    """When logins for this username or from this address may be tried again, if locked."""
    until: datetime | None = None
    for column, value in ((LoginAttempt.username, login_key(username)),
                          (LoginAttempt.address, address[:64])):  # fmt: skip
        times = list(
            session.scalars(
                select(LoginAttempt.at)
                .where(column == value, LoginAttempt.at > now - 2 * LOGIN_WINDOW)
                .order_by(LoginAttempt.at)
            )
        )
        for first, last in zip(times, times[LOGIN_LIMIT - 1 :], strict=False):
            if last - first <= LOGIN_WINDOW and last + LOGIN_WINDOW > now:
                until = max(until or now, last + LOGIN_WINDOW)
    return until


def note_login(session: Session, username: str, address: str, ok: bool, now: datetime) -> None:
    """Count a failed login; a successful one clears the username's count."""
    key = login_key(username)
    if ok:
        session.execute(delete(LoginAttempt).where(LoginAttempt.username == key))
        return
    session.execute(delete(LoginAttempt).where(LoginAttempt.at <= now - 2 * LOGIN_WINDOW))
    session.add(LoginAttempt(at=now, username=key, address=address[:64]))

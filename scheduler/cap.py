"""CAP 1.2 alerts from warning centres (POST /alerts/cap).

An OASIS Common Alerting Protocol 1.2 document is parsed without DTDs or entities
(defusedxml), checked for what the schema requires, and then:

- `Actual` `Alert` / `Update` (scope `Public`): one emergency bulletin, read in Vietnamese
  (the `info` in `vi` / `vi-VN`, else the first), approved automatically in the name of the
  API token that sent it ("… (CAP)"), and aired at once in the communes its areas name;
  an `Update` also cancels what the alerts it references still had waiting.
- `Cancel` (`Actual`): the broadcasts of the referenced alerts that have not started are
  cancelled; what already plays is not stopped.
- anything else (`Test`, `Exercise`, `System`, `Draft`, `Ack`, `Error`): recorded, never aired.

Every accepted alert is kept in `cap_alerts`, unique per (sender, identifier): the same
alert sent again is answered as the first time, nothing is done twice.

`parse`, `choose_info`, `bulletin_text` and `match_areas` are pure; `receive` is the
write path.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden
from defusedxml.ElementTree import fromstring
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler import broadcasts as bc
from scheduler import bulletins, service
from scheduler.auth import MANAGERS, Actor
from scheduler.context import Loa
from scheduler.errors import BadRequest, Conflict, InvalidInput, NotFound
from scheduler.models import (
    OPEN_STATUSES,
    Area,
    Broadcast,
    Bulletin,
    BulletinStatus,
    CapAlert,
    Priority,
    Status,
)

NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
SCOPES = ("Public", "Restricted", "Private")
CATEGORIES = (
    "Geo", "Met", "Safety", "Security", "Rescue", "Health", "Env", "Transport", "Infra",
    "CBRNE", "Other",
)  # fmt: skip
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
MAX_KEY = 255  # the longest identifier or sender kept
TOPIC = "CAP"  # the topic of the bulletins alerts make: the as-run log filters by it

# CAP's dateTime: the schema's "2026-11-26T08:00:00+07:00"; "Z" and fractions of a second
# are taken too (some centres send them), a time without an offset never.
_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)")
_FORBIDDEN_IN_KEY = re.compile(r"[\s,<&]")  # CAP 1.2 §3.2.1: no spaces, commas, < or &
_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_NAME_PREFIXES = ("xa ", "thi tran ", "phuong ")  # after `plain`: Xã, Thị trấn, Phường


# --- the message ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Geocode:
    value_name: str
    value: str


@dataclass(frozen=True)
class CapArea:
    desc: str
    geocodes: tuple[Geocode, ...] = ()


@dataclass(frozen=True)
class CapInfo:
    language: str
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str | None
    description: str | None
    instruction: str | None
    expires: datetime | None
    areas: tuple[CapArea, ...]


@dataclass(frozen=True)
class Reference:
    """One entry of <references>: "sender,identifier,sent"."""

    sender: str
    identifier: str
    sent: datetime

    def __str__(self) -> str:
        return f"{self.sender},{self.identifier},{self.sent.isoformat()}"


@dataclass(frozen=True)
class CapMessage:
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    references: tuple[Reference, ...]
    infos: tuple[CapInfo, ...]
    xml: str  # the document as it came, as text


def _invalid(detail: str) -> BadRequest:
    return BadRequest(detail, "invalid_cap")


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _texts(parent: Element, name: str) -> list[str]:
    return [(child.text or "").strip() for child in parent.findall(_q(name))]


def _optional(parent: Element, path: str, name: str) -> str | None:
    values = _texts(parent, name)
    if len(values) > 1:
        raise _invalid(f"{path} has {len(values)} <{name}> elements; CAP allows one")
    return values[0] if values and values[0] else None


def _required(parent: Element, path: str, name: str) -> str:
    value = _optional(parent, path, name)
    if value is None:
        raise _invalid(f"{path}/{name} is missing or empty; CAP 1.2 requires it")
    return value


def _one_of(parent: Element, path: str, name: str, allowed: Sequence[str]) -> str:
    value = _required(parent, path, name)
    if value not in allowed:
        raise _invalid(f"{path}/{name} is {value!r}; CAP 1.2 allows {', '.join(allowed)}")
    return value


def _datetime(value: str, where: str) -> datetime:
    if _DATETIME.fullmatch(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise _invalid(
        f"{where} is {value!r}; CAP 1.2 wants a date and time with its offset, "
        "e.g. 2026-11-26T08:00:00+07:00"
    )


def _key(parent: Element, path: str, name: str) -> str:
    value = _required(parent, path, name)
    if _FORBIDDEN_IN_KEY.search(value):
        raise _invalid(f"{path}/{name} {value!r} has a space, comma, < or &; CAP 1.2 forbids them")
    if len(value) > MAX_KEY:
        raise _invalid(f"{path}/{name} is longer than {MAX_KEY} characters")
    return value


def _references(text: str | None) -> tuple[Reference, ...]:
    refs = []
    for entry in (text or "").split():
        parts = entry.split(",")
        if len(parts) != 3 or not all(parts):
            raise _invalid(
                f"alert/references has {entry!r}; each entry is sender,identifier,sent "
                "and entries are separated by spaces"
            )
        refs.append(Reference(parts[0], parts[1], _datetime(parts[2], "alert/references sent")))
    return tuple(refs)


def _area(element: Element, path: str) -> CapArea:
    desc = _required(element, path, "areaDesc")
    geocodes = []
    for i, geocode in enumerate(element.findall(_q("geocode")), 1):
        where = f"{path}/geocode[{i}]"
        geocodes.append(
            Geocode(_required(geocode, where, "valueName"), _required(geocode, where, "value"))
        )
    return CapArea(desc, tuple(geocodes))


def _info(element: Element, path: str) -> CapInfo:
    categories = _texts(element, "category")
    if not any(categories):
        raise _invalid(f"{path}/category is missing; CAP 1.2 requires at least one")
    for category in categories:
        if category not in CATEGORIES:
            raise _invalid(
                f"{path}/category is {category!r}; CAP 1.2 allows {', '.join(CATEGORIES)}"
            )
    expires = _optional(element, path, "expires")
    return CapInfo(
        language=_optional(element, path, "language") or "en-US",  # CAP's default
        categories=tuple(categories),
        event=_required(element, path, "event"),
        urgency=_one_of(element, path, "urgency", URGENCIES),
        severity=_one_of(element, path, "severity", SEVERITIES),
        certainty=_one_of(element, path, "certainty", CERTAINTIES),
        headline=_optional(element, path, "headline"),
        description=_optional(element, path, "description"),
        instruction=_optional(element, path, "instruction"),
        expires=_datetime(expires, f"{path}/expires") if expires else None,
        areas=tuple(
            _area(area, f"{path}/area[{i}]")
            for i, area in enumerate(element.findall(_q("area")), 1)
        ),
    )


def _as_text(data: bytes) -> str:
    """The document as text, in the encoding its declaration names (default UTF-8)."""
    declared = _ENCODING.match(data)
    encoding = declared.group(1).decode("ascii") if declared else "utf-8-sig"
    try:
        codecs.lookup(encoding)
    except LookupError:
        encoding = "utf-8-sig"
    return data.decode(encoding, errors="replace")


def parse(data: bytes) -> CapMessage:
    """A CAP 1.2 message from its XML; raises BadRequest("invalid_cap") naming what is wrong.

    No DTD, no entity, no external reference is read: a document with a DOCTYPE is refused."""
    if not data.strip():
        raise _invalid("the body is empty; send a CAP 1.2 XML document")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DTDForbidden, EntitiesForbidden) as exc:
        raise _invalid(
            f"the document declares a DOCTYPE or entities ({type(exc).__name__}); "
            "CAP documents are refused with them"
        ) from None
    except DefusedXmlException as exc:
        raise _invalid(f"the document refers to something outside it: {exc}") from None
    except ParseError as exc:
        raise _invalid(f"the body is not well-formed XML: {exc}") from None
    if root.tag != _q("alert"):
        namespace, _, local = (
            root.tag[1:].rpartition("}") if root.tag[:1] == "{" else ("", "", root.tag)
        )
        if local != "alert":
            raise _invalid(
                f"the root element is <{local}>; a CAP 1.2 document is an <alert> in {NAMESPACE!r}"
            )
        raise _invalid(
            f"<alert> is in the namespace {namespace or '(none)'!r}; "
            f"a CAP 1.2 alert is in {NAMESPACE!r}"
        )
    path = "alert"
    return CapMessage(
        identifier=_key(root, path, "identifier"),
        sender=_key(root, path, "sender"),
        sent=_datetime(_required(root, path, "sent"), "alert/sent"),
        status=_one_of(root, path, "status", STATUSES),
        msg_type=_one_of(root, path, "msgType", MSG_TYPES),
        scope=_one_of(root, path, "scope", SCOPES),
        references=_references(_optional(root, path, "references")),
        infos=tuple(
            _info(info, f"alert/info[{i}]") for i, info in enumerate(root.findall(_q("info")), 1)
        ),
        xml=_as_text(data),
    )


def choose_info(message: CapMessage) -> CapInfo | None:
    """The info Loa reads: the first in Vietnamese (vi, vi-VN), else the first."""
    for info in message.infos:
        language = info.language.lower()
        if language == "vi" or language.startswith("vi-"):
            return info
    return message.infos[0] if message.infos else None


def bulletin_text(info: CapInfo) -> tuple[str, str]:
    """(title, text) of the bulletin: the headline (or event) as title; headline,
    description and instruction, those present, as paragraphs."""
    title = (info.headline or info.event)[: bulletins.MAX_TITLE].strip()
    paragraphs = [p for p in (info.headline, info.description, info.instruction) if p]
    return title, "\n\n".join(paragraphs or [info.event])


# --- areas -> communes ---------------------------------------------------------------------


def plain(name: str) -> str:
    """A place name compared without case, diacritics or extra spaces."""
    text = unicodedata.normalize("NFD", name.casefold().replace("đ", "d"))
    return " ".join("".join(c for c in text if not unicodedata.combining(c)).split())


def _bare(plain_name: str) -> str:
    """A plain name without its Xã / Thị trấn / Phường prefix."""
    for prefix in _NAME_PREFIXES:
        if plain_name.startswith(prefix) and len(plain_name) > len(prefix):
            return plain_name[len(prefix) :]
    return plain_name


@dataclass(frozen=True)
class AreaMatch:
    codes: tuple[str, ...]  # communes, in the order the alert names them
    unknown: tuple[str, ...]  # names that matched no commune (or several)
    ambiguous: tuple[str, ...] = ()  # "name (code, code)": several communes, aired in none


def match_areas(areas: Iterable[CapArea], communes: Iterable[tuple[str, str]]) -> AreaMatch:
    """The communes (code, name) that the areas name.

    An area with a geocode whose value is a commune's official code (whatever its
    valueName: "mã xã", "commune", "ADM3", …) is that commune. Otherwise its areaDesc,
    whole or split at commas and semicolons, is matched to commune names without regard
    to case, diacritics, or a Xã / Thị trấn / Phường prefix ("Xã Thọ Sơn", "THO SON" and
    "Thọ Sơn" are one commune). A name that fits several communes is not guessed: it is
    reported as ambiguous, to be sent by code."""
    codes: set[str] = set()
    by_name: dict[str, list[str]] = {}
    by_bare: dict[str, list[str]] = {}
    for code, name in communes:
        codes.add(code)
        by_name.setdefault(plain(name), []).append(code)
        by_bare.setdefault(_bare(plain(name)), []).append(code)

    def lookup(name: str) -> list[str]:
        full = plain(name)
        return by_name.get(full) or by_bare.get(full) or by_bare.get(_bare(full)) or []

    found: list[str] = []
    unknown: list[str] = []
    ambiguous: list[str] = []
    for area in areas:
        named = [g.value.strip() for g in area.geocodes if g.value.strip() in codes]
        if not named:
            parts = [area.desc] if lookup(area.desc) else re.split(r"[,;]", area.desc)
            for part in filter(None, (p.strip() for p in parts)):
                matches = lookup(part)
                if len(matches) == 1:
                    named.append(matches[0])
                    continue
                if matches:
                    ambiguous.append(f"{part} ({', '.join(matches)})")
                if part not in unknown:
                    unknown.append(part)
        found.extend(named)
    return AreaMatch(tuple(dict.fromkeys(found)), tuple(unknown), tuple(ambiguous))


class UnknownAreas(InvalidInput):
    """No area of the alert names a commune of this server (HTTP 422, `unknown_areas`)."""

    def __init__(self, match: AreaMatch) -> None:
        shown = "; ".join(match.unknown) or "(the alert names no area)"
        detail = f"no commune here matches the alert's areas: {shown}"
        if match.ambiguous:
            detail += (
                f". Several communes share a name: {'; '.join(match.ambiguous)}; "
                "name them by their official code in <geocode>"
            )
        super().__init__(detail, "unknown_areas")
        self.areas = match.unknown


# --- the write path ------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """What receiving an alert did. `kind`: aired (an emergency bulletin was broadcast),
    cancelled (a Cancel was applied), recorded (kept, never aired)."""

    kind: Literal["aired", "cancelled", "recorded"]
    alert_id: int
    status: str
    msg_type: str
    duplicate: bool = False  # the same alert had been received before: nothing done again
    bulletin_id: int | None = None
    broadcasts: tuple[int, ...] = ()
    communes: tuple[str, ...] = ()
    unknown_areas: tuple[str, ...] = ()
    cancelled: int = 0  # a Cancel's, or an Update's of what it supersedes
    still_playing: tuple[int, ...] = ()  # referenced broadcasts already playing: not stopped
    unknown_references: tuple[str, ...] = ()


def receive(loa: Loa, actor: Actor, data: bytes) -> Received:
    """Receive a CAP 1.2 document from a warning centre (see the module's docstring).

    Raises BadRequest (malformed or invalid document), InvalidInput (`cap_expired`,
    `cap_not_public`, `cap_no_info`, UnknownAreas), Conflict (`cap_duplicate`: the same
    identifier with another sent time), NotFound (a Cancel of alerts never received).
    Nothing is written when it raises."""
    actor.require(*MANAGERS)
    message = parse(data)
    with loa.transaction() as session:
        prior = _prior(session, message)
        communes = [
            (code, name)
            for code, name in session.execute(
                select(Area.code, Area.name).where(Area.level == "commune")
            )
        ]
    info = choose_info(message) if message.msg_type in ("Alert", "Update") else None
    match = match_areas(info.areas if info else (), communes)
    if prior is not None and prior.bulletin_id is not None:
        return _aired_before(loa, prior, match)
    actual_cancel = message.status == "Actual" and message.msg_type == "Cancel"
    if prior is not None and not actual_cancel:  # recorded before, never aired
        return Received(
            "recorded", prior.id, prior.status, prior.msg_type, True,
            communes=match.codes, unknown_areas=match.unknown,
        )  # fmt: skip
    if info is not None and info.expires is not None and info.expires < loa.now():
        raise InvalidInput(
            f"the alert expired at {info.expires.isoformat()} (alert/info/expires)", "cap_expired"
        )
    if message.status != "Actual" or message.msg_type in ("Ack", "Error"):
        return Received(
            "recorded", _record(loa, actor, message), message.status, message.msg_type,
            communes=match.codes, unknown_areas=match.unknown,
        )  # fmt: skip
    if actual_cancel:  # sent again, it is applied again: it cancels nothing more
        return _cancel(loa, actor, message, prior)
    if message.scope != "Public":
        raise InvalidInput(
            f"the alert's scope is {message.scope}; loudspeakers air only Public alerts",
            "cap_not_public",
        )
    if info is None:
        raise InvalidInput("the alert has no <info>: nothing to read aloud", "cap_no_info")
    if not match.codes:
        raise UnknownAreas(match)
    return _air(loa, actor, message, info, match)


@dataclass(frozen=True)
class _Prior:
    id: int
    bulletin_id: int | None
    status: str
    msg_type: str


def _prior(session: Session, message: CapMessage) -> _Prior | None:
    """The same alert received before; Conflict if its sender reused the identifier."""
    row = session.scalar(
        select(CapAlert).where(
            CapAlert.sender == message.sender, CapAlert.identifier == message.identifier
        )
    )
    if row is None:
        return None
    if row.sent != message.sent:
        raise Conflict(
            f"{message.sender} already sent an alert {message.identifier} "
            f"(sent {row.sent.isoformat()}); a new alert needs a new identifier",
            "cap_duplicate",
        )
    return _Prior(row.id, row.bulletin_id, row.status, row.msg_type)


def _new_alert(
    message: CapMessage, actor: Actor, now: datetime, bulletin_id: int | None
) -> CapAlert:
    return CapAlert(
        identifier=message.identifier,
        sender=message.sender,
        sent=message.sent,
        status=message.status,
        msg_type=message.msg_type,
        xml=message.xml,
        bulletin_id=bulletin_id,
        received_at=now,
        received_by=actor.name,
    )


def _record(loa: Loa, actor: Actor, message: CapMessage) -> int:
    """Keep the alert; the same alert recorded meanwhile by another request is that one."""
    try:
        with loa.transaction() as session:
            row = _new_alert(message, actor, loa.now(), None)
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        with loa.transaction() as session:
            prior = _prior(session, message)
        if prior is None:
            raise
        return prior.id


def _aired_before(loa: Loa, prior: _Prior, match: AreaMatch) -> Received:
    """The answer a received alert got, for the sender that sends it again."""
    with loa.transaction() as session:
        rows = session.execute(
            select(Broadcast.id, Area.code)
            .join(Area, Area.id == Broadcast.commune_id)
            .where(Broadcast.bulletin_id == prior.bulletin_id)
            .order_by(Broadcast.id)
        ).all()
    return Received(
        "aired", prior.id, prior.status, prior.msg_type, True, prior.bulletin_id,
        tuple(r.id for r in rows), tuple(dict.fromkeys(r.code for r in rows)), match.unknown,
    )  # fmt: skip


def _air(loa: Loa, actor: Actor, message: CapMessage, info: CapInfo, match: AreaMatch) -> Received:
    """An emergency bulletin, approved in the sender's name, rendered, and broadcast now in
    the matched communes; the alert is recorded in the same transaction as the broadcasts,
    so a retry that races this one airs nothing twice."""
    title, text = bulletin_text(info)
    engine = loa.settings.tts_engine
    loa.renderer.check(text, engine, "vi", 1.0)  # refuse unspeakable text before any write
    now = loa.now()
    with loa.transaction() as session:
        bulletin = bulletins.create_bulletin(
            session, actor, title=title, text=text, topic=TOPIC, priority=Priority.EMERGENCY,
            now=now, max_chars=loa.renderer.max_chars,
        )  # fmt: skip
        service.set_voice(loa, session, bulletin, bulletins.Voice(engine=engine))
        bulletins.approve(session, actor, bulletin, now)
        # Approved by no person: by the token that sent the alert, because it was one.
        bulletin.approved_by = f"{actor.name} (CAP)"[:120]
        bulletin_id = bulletin.id
    try:
        service.render_bulletin(loa, actor, bulletin_id)
        now = loa.now()
        with loa.transaction() as session:
            alert = _new_alert(message, actor, now, bulletin_id)
            session.add(alert)
            session.flush()  # the unique (sender, identifier) claims the alert
            bulletin = bulletins.get_bulletin(session, bulletin_id)
            areas = list(
                session.scalars(
                    select(Area).where(Area.level == "commune", Area.code.in_(match.codes))
                )
            )
            areas.sort(key=lambda a: match.codes.index(a.code))
            made = bc.schedule(session, actor, bulletin, areas, now, now)
            alert_id, ids = alert.id, [b.id for b in made]
    except Exception as exc:
        _forget(loa, bulletin_id)
        if isinstance(exc, IntegrityError):  # the same alert, aired by a request meanwhile
            with loa.transaction() as session:
                prior = _prior(session, message)
            if prior is not None and prior.bulletin_id is not None:
                return _aired_before(loa, prior, match)
        raise
    service.changed(loa, ids)  # arm the timers, wake the endpoints: it interrupts what plays
    superseded = _cancel_referenced(loa, actor, message.references)
    return Received(
        "aired", alert_id, message.status, message.msg_type, False, bulletin_id, tuple(ids),
        match.codes, match.unknown, superseded.cancelled, superseded.still_playing,
        superseded.unknown,
    )  # fmt: skip


def _forget(loa: Loa, bulletin_id: int) -> None:
    """Remove the bulletin an alert that was not aired had made (it was never scheduled)."""
    with loa.transaction() as session:
        bulletin = session.get(Bulletin, bulletin_id)
        used = session.scalar(select(Broadcast.id).where(Broadcast.bulletin_id == bulletin_id))
        if bulletin is not None and used is None and bulletin.status == BulletinStatus.APPROVED:
            session.delete(bulletin)


@dataclass(frozen=True)
class _Cancelled:
    known: int  # references that name an alert received here
    cancelled: int
    still_playing: tuple[int, ...]
    unknown: tuple[str, ...]


def _cancel_referenced(loa: Loa, actor: Actor, references: Sequence[Reference]) -> _Cancelled:
    """Cancel the broadcasts not started of the Actual alerts these references name."""
    known = 0
    unknown: list[str] = []
    bulletin_ids: list[int] = []
    with loa.transaction() as session:
        for ref in references:
            row = session.scalar(
                select(CapAlert).where(
                    CapAlert.sender == ref.sender, CapAlert.identifier == ref.identifier
                )
            )
            if row is None or row.sent != ref.sent:
                unknown.append(str(ref))
                continue
            known += 1
            if row.bulletin_id is not None and row.status == "Actual":
                bulletin_ids.append(row.bulletin_id)
        rows = session.execute(
            select(Broadcast.id, Broadcast.status).where(Broadcast.bulletin_id.in_(bulletin_ids))
        ).all()
    cancelled = 0
    playing = [r.id for r in rows if r.status == Status.PLAYING]
    for broadcast_id in [r.id for r in rows if r.status in OPEN_STATUSES]:
        try:
            service.cancel_broadcast(loa, actor, broadcast_id)
            cancelled += 1
        except Conflict:  # it started meanwhile
            with loa.transaction() as session:
                if bc.get_broadcast(session, broadcast_id).status == Status.PLAYING:
                    playing.append(broadcast_id)
    return _Cancelled(known, cancelled, tuple(sorted(playing)), tuple(unknown))


def _cancel(loa: Loa, actor: Actor, message: CapMessage, prior: _Prior | None) -> Received:
    """An Actual Cancel: the referenced alerts' broadcasts not started are cancelled (those
    playing are not stopped), then the Cancel is recorded. Sent again, it cancels nothing
    more."""
    if not message.references:
        raise _invalid("a Cancel names the alerts it cancels in alert/references")
    done = _cancel_referenced(loa, actor, message.references)
    if not done.known:
        raise NotFound(
            f"no alert received here matches alert/references: {'; '.join(done.unknown)}",
            "unknown_alert",
        )
    alert_id = prior.id if prior else _record(loa, actor, message)
    return Received(
        "cancelled", alert_id, message.status, message.msg_type, prior is not None,
        cancelled=done.cancelled, still_playing=done.still_playing,
        unknown_references=done.unknown,
    )  # fmt: skip

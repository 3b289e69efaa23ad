"""Database models. Every state change is a row: BroadcastEvent, DeliveryAttempt."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend (SQLite has no tz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


MAX_ID = 2**63 - 1  # the largest id a database integer column holds


class Priority(StrEnum):
    """Thông tư 39/2020/TT-BTTTT levels."""

    NORMAL = "normal"
    PRIORITY = "priority"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        return {"normal": 0, "priority": 1, "emergency": 2}[self.value]


class BulletinKind(StrEnum):
    """What a bulletin plays: text spoken by a voice, an uploaded recording, or a live
    stream relayed for a set time (tiếp sóng)."""

    SPEECH = "speech"
    RECORDING = "recording"
    RELAY = "relay"


class BulletinStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"


class Status(StrEnum):
    """Lifecycle of a broadcast and of each of its deliveries."""

    SCHEDULED = "scheduled"
    DELIVERED = "delivered"
    PLAYING = "playing"
    PLAYED = "played"
    PARTIAL = "partial"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    MISSED = "missed"
    CANCELLED = "cancelled"


OPEN_STATUSES = (Status.SCHEDULED, Status.DELIVERED)


class Role(StrEnum):
    ADMIN = "admin"
    CENTRE = "centre"
    APPROVER = "approver"  # approves bulletins (with four eyes: others' only)
    OPERATOR = "operator"
    REPORTER = "reporter"


class Area(Base):
    """A node of the area tree: province -> district (where there is one) -> commune."""

    __tablename__ = "areas"
    __table_args__ = (UniqueConstraint("level", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16))  # province | district | commune
    kind: Mapped[str] = mapped_column(String(16))  # xa | phuong | thi-tran | huyen | tinh ...
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    # Quiet hours (giờ yên tĩnh), local "HH:MM" to "HH:MM", possibly across midnight:
    # nothing but emergencies is placed or aired in them. None: no quiet hours.
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))

    parent: Mapped[Area | None] = relationship(remote_side=[id])


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16))
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    language: Mapped[str] = mapped_column(String(8), default="vi")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    commune: Mapped[Area | None] = relationship()  # an operator's first commune
    communes: Mapped[list[Area]] = relationship(secondary="user_communes")  # all of them


user_communes = Table(
    "user_communes",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("commune_id", ForeignKey("areas.id"), primary_key=True),
)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    commune: Mapped[Area | None] = relationship()


class Endpoint(Base):
    """A loudspeaker cluster of a commune, reached through one driver kind."""

    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("commune_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Where the driver reaches it: an Icecast mount URL, a sound-card device, ...
    address: Mapped[str | None] = mapped_column(String(500))
    # Health from heartbeats (up | late | down), with what the device last said of itself.
    state: Mapped[str] = mapped_column(String(8), default="down", server_default="down")
    state_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    agent_version: Mapped[str | None] = mapped_column(String(64))
    clock_offset_seconds: Mapped[float | None] = mapped_column(Float)
    cache_free_bytes: Mapped[int | None] = mapped_column(BigInteger)
    missing_audio: Mapped[int | None] = mapped_column(Integer)  # items it could not fetch yet
    cache_error: Mapped[str | None] = mapped_column(String(32))  # e.g. disk_full

    commune: Mapped[Area] = relationship()


class EndpointEvent(Base):
    """A change of an endpoint's health state (up / late / down)."""

    __tablename__ = "endpoint_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    from_state: Mapped[str | None] = mapped_column(String(8))
    to_state: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text)

    endpoint: Mapped[Endpoint] = relationship()


class AudioAsset(Base):
    """What a broadcast plays: an MP3 in the audio store addressed by its checksum
    (rendered speech, a mastered recording), or a relay's stream URL and duration
    (its checksum is that of the two, so the same relay is one row)."""

    __tablename__ = "audio_assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(String(500))
    duration_seconds: Mapped[float] = mapped_column(Float)
    engine: Mapped[str] = mapped_column(String(32))
    voice: Mapped[str] = mapped_column(String(64))
    spoken_text: Mapped[str] = mapped_column(Text)
    fallback_reason: Mapped[str | None] = mapped_column(Text)
    loudness_lufs: Mapped[float | None] = mapped_column(Float)
    true_peak_dbtp: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stream_url: Mapped[str | None] = mapped_column(String(500))  # a relay: no file


class Jingle(Base):
    """An uploaded intro or outro (nhạc hiệu), loudness-matched when it was stored."""

    __tablename__ = "jingles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    duration_seconds: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Bulletin(Base):
    __tablename__ = "bulletins"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16), default="speech", server_default="speech")
    text: Mapped[str] = mapped_column(Text)  # a recording's or relay's: an optional note
    topic: Mapped[str] = mapped_column(String(120), default="")
    priority: Mapped[str] = mapped_column(String(16), default=Priority.NORMAL.value)
    status: Mapped[str] = mapped_column(String(16), default=BulletinStatus.DRAFT.value)
    audio_id: Mapped[int | None] = mapped_column(ForeignKey("audio_assets.id"))
    # How it is spoken: the engine chain, the voice, the speed, the jingles around it.
    engine: Mapped[str] = mapped_column(String(16), default="auto", server_default="auto")
    voice: Mapped[str] = mapped_column(String(64), default="vi", server_default="vi")
    speed: Mapped[float] = mapped_column(Float, default=1.0, server_default="1.0")
    intro_id: Mapped[int | None] = mapped_column(ForeignKey("jingles.id"))
    outro_id: Mapped[int | None] = mapped_column(ForeignKey("jingles.id"))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(120))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    audio: Mapped[AudioAsset | None] = relationship()
    intro: Mapped[Jingle | None] = relationship(foreign_keys=[intro_id])
    outro: Mapped[Jingle | None] = relationship(foreign_keys=[outro_id])


def _link(name: str, left: str, right: str) -> Table:
    """A many-to-many table of ids."""
    return Table(
        name,
        Base.metadata,
        Column(f"{left}_id", ForeignKey(f"{left}s.id", ondelete="CASCADE"), primary_key=True),
        Column(f"{right}_id", ForeignKey("areas.id"), primary_key=True),
    )


slot_communes = _link("slot_communes", "slot", "commune")
group_communes = _link("group_communes", "group", "commune")
placement_communes = _link("placement_communes", "placement", "commune")
placement_slots = Table(
    "placement_slots",
    Base.metadata,
    Column("placement_id", ForeignKey("placements.id", ondelete="CASCADE"), primary_key=True),
    Column("slot_id", ForeignKey("slots.id"), primary_key=True),
)


class Slot(Base):
    """A daily broadcast slot (khung giờ phát): local start, length, weekdays, communes."""

    __tablename__ = "slots"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    start: Mapped[str] = mapped_column(String(5))  # "HH:MM", local time
    minutes: Mapped[int] = mapped_column(Integer)
    weekdays: Mapped[str] = mapped_column(String(7), default="1234567")  # ISO, 1 = Monday
    all_communes: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    communes: Mapped[list[Area]] = relationship(secondary=slot_communes)


class Group(Base):
    """A named set of communes to place bulletins in together."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    communes: Mapped[list[Area]] = relationship(secondary=group_communes)


class Placement(Base):
    """A bulletin placed (lịch phát) for some communes by a rule: once at a time, into
    slots on some days between two dates, or repeated N times every M seconds."""

    __tablename__ = "placements"

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletins.id"), index=True)
    priority: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(8))  # all | group | list
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"))
    rule: Mapped[str] = mapped_column(String(8))  # once | slots | repeat
    at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # once, repeat
    repeat: Mapped[int | None] = mapped_column(Integer)
    every_seconds: Mapped[int | None] = mapped_column(Integer)
    date_from: Mapped[date | None] = mapped_column(Date)  # slots, local dates
    date_to: Mapped[date | None] = mapped_column(Date)
    weekdays: Mapped[str | None] = mapped_column(String(7))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(String(120))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    bulletin: Mapped[Bulletin] = relationship()
    group: Mapped[Group | None] = relationship()
    communes: Mapped[list[Area]] = relationship(secondary=placement_communes)
    slots: Mapped[list[Slot]] = relationship(secondary=placement_slots, order_by="Slot.id")


class Broadcast(Base):
    """One bulletin in one commune at one time: the unit of the as-run log."""

    __tablename__ = "broadcasts"
    __table_args__ = (
        UniqueConstraint("placement_id", "commune_id", "planned_at"),  # also: by placement
        # The log filtered by status, the waiting list and readiness: a status in a period
        # (and a status alone).
        Index("ix_broadcasts_status_scheduled_at", "status", "scheduled_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletins.id"), index=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    audio_id: Mapped[int] = mapped_column(ForeignKey("audio_assets.id"))
    priority: Mapped[str] = mapped_column(String(16))
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(16), default=Status.SCHEDULED.value)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_by: Mapped[str | None] = mapped_column(String(120))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmation: Mapped[str | None] = mapped_column(String(16))  # device | operator
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Planned by a placement: the instant its rule gave (unique per placement and commune),
    # and, in a slot, the slot occurrence it is queued in, its place there, and whether it
    # was moved there because it did not fit where it was planned.
    placement_id: Mapped[int | None] = mapped_column(ForeignKey("placements.id"))
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("slots.id"))
    slot_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    position: Mapped[int | None] = mapped_column(Integer)
    overflow: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The rest of an interrupted broadcast, played after the emergency (when the district
    # resumes interrupted items): the broadcast it resumes, once.
    resumes_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id"), unique=True)

    bulletin: Mapped[Bulletin] = relationship()
    commune: Mapped[Area] = relationship()
    audio: Mapped[AudioAsset] = relationship()
    placement: Mapped[Placement | None] = relationship()
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="broadcast", order_by="Delivery.id"
    )
    events: Mapped[list[BroadcastEvent]] = relationship(order_by="BroadcastEvent.id")


class Delivery(Base):
    """A broadcast at one endpoint of its commune, with that endpoint's proof of play."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("broadcast_id", "endpoint_id"),)  # also: by broadcast

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=Status.SCHEDULED.value, index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    clock_offset_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    # When the dispatcher starts it again after a transient driver error (None: no retry).
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)

    broadcast: Mapped[Broadcast] = relationship(back_populates="deliveries")
    endpoint: Mapped[Endpoint] = relationship()
    attempts: Mapped[list[DeliveryAttempt]] = relationship(order_by="DeliveryAttempt.id")


class BroadcastEvent(Base):
    """A status change of a broadcast or of one of its deliveries."""

    __tablename__ = "broadcast_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(Text)
    # Sealed into the tamper-evident chain (scheduler.chain): its place, its digest, and
    # its broadcast's facts when it was sealed. None until the sealer takes it.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    digest: Mapped[str | None] = mapped_column(String(64))
    facts: Mapped[str | None] = mapped_column(Text)


class DeliveryAttempt(Base):
    """One call of an endpoint driver, with its error when it failed."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    permanent: Mapped[bool] = mapped_column(Boolean, default=False)


class LexiconEntry(Base):
    """A word the centre teaches the normalizer: a local abbreviation or place name."""

    __tablename__ = "lexicon"

    id: Mapped[int] = mapped_column(primary_key=True)
    term: Mapped[str] = mapped_column(String(80), unique=True)
    spoken: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CapAlert(Base):
    """A CAP 1.2 alert a warning centre sent (POST /alerts/cap), kept as it came, with the
    emergency bulletin it caused (an Actual Alert or Update); unique per sender."""

    __tablename__ = "cap_alerts"
    __table_args__ = (UniqueConstraint("sender", "identifier"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(String(255))
    sent: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # Actual | Exercise | System | Test | Draft
    msg_type: Mapped[str] = mapped_column(String(16))  # Alert | Update | Cancel | Ack | Error
    xml: Mapped[str] = mapped_column(Text)
    bulletin_id: Mapped[int | None] = mapped_column(ForeignKey("bulletins.id"), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_by: Mapped[str] = mapped_column(String(120))

    bulletin: Mapped[Bulletin | None] = relationship()


class AuditEntry(Base):
    """Who did what to which object (created, edited, approved, placed, cancelled,
    confirmed, exported, ...), for the administrator."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(120), index=True)
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(32))  # bulletin, placement, broadcast, ...
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str | None] = mapped_column(Text)


class LoginAttempt(Base):
    """A failed panel login, counted per username and per client address to slow password
    guessing; in the database so that every `loa web` process sees the same counts."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    username: Mapped[str] = mapped_column(String(120), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)


class Job(Base):
    """Long work run in the background for a user (a report export, a long render): its
    parameters, progress and outcome. Claimed with a conditional UPDATE, so one process
    runs it; `updated_at` moves with each progress report."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # export | render
    requested_by: Mapped[str] = mapped_column(String(120), index=True)
    params: Mapped[str] = mapped_column(Text)  # JSON
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued|running|done|failed
    done: Mapped[int] = mapped_column(Integer)  # progress: rows (or steps) done of total
    total: Mapped[int | None] = mapped_column(Integer)
    result_path: Mapped[str | None] = mapped_column(String(255))  # under the data dir
    error_code: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

"""The one typed context a process builds and passes in: settings, clock, database, audio."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from audio.render import Renderer, default_engines
from audio.tts import Engine as TtsEngine
from scheduler.clock import Clock, SystemClock
from scheduler.db import (
    SchemaError,
    make_engine,
    make_session_factory,
    migrate,
    require_current,
    transaction,
)
from scheduler.drivers.agent import AgentDriver
from scheduler.drivers.base import Driver
from scheduler.drivers.manual import ManualDriver
from scheduler.health import Heartbeats
from scheduler.ingest import ReportWriter
from scheduler.notify import ChangeNotifier
from scheduler.settings import Settings


@dataclass
class Loa:
    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    renderer: Renderer
    notifier: ChangeNotifier = field(default_factory=ChangeNotifier)
    heartbeats: Heartbeats = field(default_factory=Heartbeats)
    reports: ReportWriter = field(init=False)
    drivers: dict[str, Driver] = field(default_factory=dict)
    # Called with the ids of newly scheduled broadcasts, after they are committed.
    on_scheduled: list[Callable[[list[int]], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reports = ReportWriter(self.sessions, self.now)

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.settings.grace_seconds)

    @property
    def close_margin(self) -> timedelta:
        return timedelta(seconds=self.settings.close_margin_seconds)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with transaction(self.sessions) as session:
            yield session

    def close(self) -> None:
        for driver in self.drivers.values():
            driver.close()
        self.reports.close()  # after the drivers: their last events are reports
        self.engine.dispose()


def make_renderer(settings: Settings, engines: dict[str, TtsEngine] | None = None) -> Renderer:
    return Renderer(
        settings.audio_dir,
        engines
        or default_engines(
            settings.gtts_timeout, settings.piper_model, online=settings.online_speech
        ),
        max_chars=settings.max_chars,
        pause_ms=settings.paragraph_pause_ms,
    )


def build_loa(
    settings: Settings,
    clock: Clock | None = None,
    engines: dict[str, TtsEngine] | None = None,
    *,
    migrate_schema: bool = True,
) -> Loa:
    """Open the database and build the context; no threads are started. With
    `migrate_schema`, bring the schema up to date, else refuse an old one (SchemaError)."""
    db = make_engine(settings.database_url)
    try:
        if migrate_schema:
            migrate(db)
        else:
            require_current(db)
    except SchemaError:
        db.dispose()
        raise
    loa = Loa(
        settings=settings,
        clock=clock or SystemClock(),
        engine=db,
        sessions=make_session_factory(db),
        renderer=make_renderer(settings, engines),
    )
    # Agents are served by the web app itself, so their driver is always present.
    loa.drivers["agent"] = AgentDriver(loa.notifier)
    loa.drivers["manual"] = ManualDriver()  # nothing to run: the operator answers
    return loa

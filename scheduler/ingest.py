"""Proof of play from many endpoints at once, applied with one commit per turn.

A slot's start brings a report from every endpoint within seconds. Applied request by
request, each is a transaction of its own (a commit, a lookup of its deliveries) and
the requests queue for SQLite's single writer. Here every waiting request's batch is
applied in one transaction on deliveries loaded together (group commit). A request's
batch still stands or falls whole: all its reports are checked before any is applied.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler import broadcasts as bc
from scheduler.db import transaction
from scheduler.errors import LoaError, NotFound, Unauthorized
from scheduler.models import Endpoint
from scheduler.status import lock_for_moves

log = logging.getLogger(__name__)

MAX_REPORTS_PER_TURN = 5000
WAIT_SECONDS = 60.0  # a caller gives up on its answer after this (the server is stuck)


@dataclass(frozen=True)
class _Batch:
    endpoint_id: int
    reports: Sequence[bc.PlayReport]
    answer: Future[int]


class ReportWriter:
    """One writer thread (started on first use) applies the waiting batches together."""

    def __init__(self, sessions: sessionmaker[Session], now: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.now = now
        self._queue: queue.Queue[_Batch | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, endpoint_id: int, reports: Sequence[bc.PlayReport]) -> int:
        """Apply one endpoint's reports, all or none; how many changed a status.
        Raises the LoaError that refused the batch."""
        return self.enqueue(endpoint_id, reports).result(timeout=WAIT_SECONDS)

    def enqueue(self, endpoint_id: int, reports: Sequence[bc.PlayReport]) -> Future[int]:
        """Queue a batch; its future gives what `submit` returns (an event loop awaits it)."""
        answer: Future[int] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="loa-reports", daemon=True)
                self._thread.start()
        self._queue.put(_Batch(endpoint_id, reports, answer))
        return answer

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            turn, count = [first], len(first.reports)
            while count < MAX_REPORTS_PER_TURN:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this turn
                    break
                turn.append(more)
                count += len(more.reports)
            self._apply_turn(turn)

    def _apply_turn(self, turn: list[_Batch]) -> None:
        outcomes: list[tuple[_Batch, int | BaseException]] = []
        try:
            with transaction(self.sessions) as session:
                outcomes = apply_batches(session, turn, self.now())
        except Exception as exc:  # the commit failed: no batch of this turn is applied
            log.exception("a turn of %d report batches failed", len(turn))
            outcomes = [(batch, exc) for batch in turn]
        for batch, outcome in outcomes:
            if isinstance(outcome, BaseException):
                batch.answer.set_exception(outcome)
            else:
                batch.answer.set_result(outcome)


def apply_batches(
    session: Session, turn: list[_Batch], now: datetime
) -> list[tuple[_Batch, int | BaseException]]:
    """Check each batch whole, then apply those that passed; refused ones change nothing."""
    ids = [r.delivery_id for batch in turn for r in batch.reports]
    lock_for_moves(session, ids)
    loaded = bc.load_deliveries(session, ids)  # held while applying: the session is weak
    endpoint_ids = {batch.endpoint_id for batch in turn}
    endpoints = {
        e.id: e for e in session.scalars(select(Endpoint).where(Endpoint.id.in_(endpoint_ids)))
    }
    outcomes: list[tuple[_Batch, int | BaseException]] = []
    for batch in turn:
        endpoint = endpoints.get(batch.endpoint_id)
        try:
            if endpoint is None:
                raise NotFound(f"no endpoint has the id {batch.endpoint_id}", "unknown_endpoint")
            if not endpoint.active:  # switched off since its token was checked
                raise Unauthorized("the token is unknown or revoked", "invalid_token")
            for report in batch.reports:
                bc.check_report(session, endpoint, report, now)
        except LoaError as exc:
            outcomes.append((batch, exc))
            continue
        changed = sum(bc.record_report(session, endpoint, r, now) for r in batch.reports)
        outcomes.append((batch, changed))
    del loaded
    return outcomes

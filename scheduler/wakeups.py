"""Wake-ups across processes on one PostgreSQL database (LISTEN/NOTIFY).

Several `loa web` and `loa scheduler` processes share a database but not memory. Two
things must cross between them at once: "these endpoints' schedules changed" (an agent
long-polling another `loa web` must answer now), and "these broadcasts were made or
moved" (the `loa scheduler` arms their timers now, not at its next sweep: an emergency
posted to any `loa web` plays within a second). Each process relays its own local news
as a NOTIFY on one channel and applies the others' news to its own notifier and
listeners. A notification is a hint: the rows stay the truth, and the periodic sweep
still finds anything a lost notification would have announced.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterable

import psycopg

from scheduler.context import Loa
from scheduler.notify import ChangeNotifier

log = logging.getLogger(__name__)

CHANNEL = "loa_wake"
MAX_PAYLOAD = 7900  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more


def payloads(origin: str, kind: str, ids: Iterable[int]) -> list[str]:
    """`origin kind id,id,…` in chunks that fit a NOTIFY."""
    head = f"{origin} {kind} "
    out, chunk = [], ""
    for n in sorted(set(ids)):
        item = str(n)
        if chunk and len(head) + len(chunk) + len(item) + 1 > MAX_PAYLOAD:
            out.append(head + chunk)
            chunk = ""
        chunk = f"{chunk},{item}" if chunk else item
    if chunk:
        out.append(head + chunk)
    return out


class PgWakeups:
    """LISTENs on its own connection in a thread; NOTIFYs on another, after the commits
    whose news it carries (the callers relay after their transaction)."""

    def __init__(
        self,
        conninfo: str,
        notifier: ChangeNotifier,
        on_scheduled: list[Callable[[list[int]], None]],
    ) -> None:
        self.conninfo = conninfo
        self.notifier = notifier
        self.on_scheduled = on_scheduled
        self.origin = secrets.token_hex(6)
        self._stop = threading.Event()
        self._send_lock = threading.Lock()
        self._sender: psycopg.Connection[tuple[object, ...]] | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="pg-wakeups", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        self.notifier.relay = self.endpoints_changed
        self.on_scheduled.append(self.broadcasts_changed)

    def endpoints_changed(self, endpoint_ids: list[int]) -> None:
        self._send("e", endpoint_ids)

    def broadcasts_changed(self, broadcast_ids: list[int]) -> None:
        self._send("b", broadcast_ids)

    def _send(self, kind: str, ids: Iterable[int]) -> None:
        try:
            with self._send_lock:
                if self._sender is None or self._sender.closed:
                    self._sender = psycopg.connect(self.conninfo, autocommit=True)
                for payload in payloads(self.origin, kind, ids):
                    self._sender.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        except psycopg.Error as exc:  # a hint lost: the sweep still finds the rows
            log.warning("could not relay a wake-up to other processes: %s", exc)
            self._sender = None

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._apply(note.payload)
            except psycopg.Error as exc:
                log.warning("wake-ups from other processes paused: %s", exc)
                self._stop.wait(2.0)

    def _apply(self, payload: str) -> None:
        origin, kind, text = payload.split(" ", 2)
        if origin == self.origin:
            return
        ids = [int(n) for n in text.split(",") if n]
        if kind == "e":
            self.notifier.notify_many(ids, relay=False)
        elif kind == "b":
            for listener in list(self.on_scheduled):
                if listener != self.broadcasts_changed:
                    listener(ids)

    def close(self) -> None:
        self._stop.set()
        if self.broadcasts_changed in self.on_scheduled:
            self.on_scheduled.remove(self.broadcasts_changed)
        self.notifier.relay = None
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._send_lock:
            if self._sender is not None:
                self._sender.close()


def start_wakeups(loa: Loa) -> PgWakeups | None:
    """Cross-process wake-ups when the database is PostgreSQL; None on SQLite, where one
    process (`loa serve`) does everything."""
    url = loa.engine.url
    if url.get_backend_name() != "postgresql":
        return None
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    wakeups = PgWakeups(conninfo, loa.notifier, loa.on_scheduled)
    wakeups.start()
    return wakeups

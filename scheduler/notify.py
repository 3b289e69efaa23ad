"""Wakes long-polling agents when their schedule changes (in-process, no broker).

A version per endpoint moves on at each change. Two kinds of waiter: a thread blocked
in `wait` (a threaded WSGI server), and a listener callback (the event-loop front,
where an idle long-poll costs no thread). Listeners are called outside the lock, from
the notifying thread, and must only hand the news over (e.g. call_soon_threadsafe).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable

Listener = Callable[[list[tuple[int, str]]], None]  # [(endpoint id, new version)]


class ChangeNotifier:
    """A version per endpoint; waiters return as soon as the version moves on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._versions: dict[int, int] = {}
        self._listeners: list[Listener] = []
        # Carries local changes to other processes (scheduler.wakeups), when set.
        self.relay: Callable[[list[int]], None] | None = None
        # A new epoch per process: an agent holding a version from before a restart
        # always sees a change.
        self._epoch = secrets.token_hex(4)

    def version(self, endpoint_id: int) -> str:
        with self._cond:
            return self._current(endpoint_id)

    def notify(self, endpoint_id: int) -> None:
        self.notify_many([endpoint_id])

    def notify_many(self, endpoint_ids: Iterable[int], *, relay: bool = True) -> None:
        """Move these endpoints' versions on and wake their waiters (and, with `relay`,
        those of other processes)."""
        ids = set(endpoint_ids)
        with self._cond:
            moved = []
            for endpoint_id in ids:
                self._versions[endpoint_id] = self._versions.get(endpoint_id, 0) + 1
                moved.append((endpoint_id, self._current(endpoint_id)))
            listeners = list(self._listeners)
            self._cond.notify_all()
        for listener in listeners:
            listener(moved)
        if relay and self.relay is not None and ids:
            self.relay(sorted(ids))

    def listen(self, listener: Listener) -> None:
        with self._cond:
            self._listeners.append(listener)

    def unlisten(self, listener: Listener) -> None:
        with self._cond:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def wait(self, endpoint_id: int, seen: str | None, timeout: float) -> str:
        """Block until the endpoint's version differs from `seen` or `timeout` passes."""
        with self._cond:
            self._cond.wait_for(lambda: self._current(endpoint_id) != seen, timeout=timeout)
            return self._current(endpoint_id)

    def _current(self, endpoint_id: int) -> str:
        return f"{self._epoch}-{self._versions.get(endpoint_id, 0)}"

"""Wakes long-polling agents when their schedule changes (in-process, no broker)."""

from __future__ import annotations

import secrets
import threading


class ChangeNotifier:
    """A version per endpoint; waiters return as soon as the version moves on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._versions: dict[int, int] = {}
        # A new epoch per process: an agent holding a version from before a restart
        # always sees a change.
        self._epoch = secrets.token_hex(4)

    def version(self, endpoint_id: int) -> str:
        with self._cond:
            return self._current(endpoint_id)

    def notify(self, endpoint_id: int) -> None:
        with self._cond:
            self._versions[endpoint_id] = self._versions.get(endpoint_id, 0) + 1
            self._cond.notify_all()

    def wait(self, endpoint_id: int, seen: str | None, timeout: float) -> str:
        """Block until the endpoint's version differs from `seen` or `timeout` passes."""
        with self._cond:
            self._cond.wait_for(lambda: self._current(endpoint_id) != seen, timeout=timeout)
            return self._current(endpoint_id)

    def _current(self, endpoint_id: int) -> str:
        return f"{self._epoch}-{self._versions.get(endpoint_id, 0)}"

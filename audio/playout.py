"""Playout: one loudspeaker's queue of due cues, played one at a time in real time.

Used by the reference agent (on the loudspeaker box) and by the server's virtual
speakers. A cue is played when it is submitted (the caller decides when it is due);
an emergency cue interrupts a non-emergency one. Every outcome is reported as a
PlayEvent through a callback, never swallowed.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

EMERGENCY_RANK = 2  # rank: 0 normal, 1 priority (goes first), 2 emergency (interrupts)


@dataclass(frozen=True)
class Cue:
    key: str
    path: Path
    duration_seconds: float
    rank: int
    due_at: datetime
    play_until: datetime
    label: str = ""


@dataclass(frozen=True)
class PlayEvent:
    key: str
    kind: str  # started | finished | interrupted | failed | missed
    at: datetime
    detail: str | None = None


class OutputError(Exception):
    """The output device could not play a cue."""


class Output(Protocol):
    def play(self, cue: Cue, stop: threading.Event) -> None:
        """Play `cue` in real time; return early when `stop` is set. Raises OutputError."""
        ...


class SilentOutput:
    """Takes as long as the audio lasts and makes no sound (virtual speakers)."""

    def play(self, cue: Cue, stop: threading.Event) -> None:
        stop.wait(cue.duration_seconds)


class CommandOutput:
    """Plays through a command that lasts as long as the audio; stopping terminates it."""

    def __init__(self, argv: Callable[[Cue], list[str]]) -> None:
        self.argv = argv

    def play(self, cue: Cue, stop: threading.Event) -> None:
        argv = self.argv(cue)
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise OutputError(f"cannot start {argv[0]}: {exc}") from exc
        while proc.poll() is None:
            if stop.wait(0.05):
                proc.terminate()  # ffmpeg finishes the file it was writing on SIGTERM
                proc.wait(timeout=10)
                return
        if proc.returncode != 0:
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise OutputError(f"{argv[0]} exited with {proc.returncode}: {err}")


def sound_card_output() -> CommandOutput:
    """The machine's default sound card, through ffplay."""
    return CommandOutput(
        lambda cue: ["ffplay", "-nodisp", "-autoexit", "-loglevel", "error", str(cue.path)]
    )


def file_sink_output(directory: Path) -> CommandOutput:
    """'Plays' each cue into its own MP3 in `directory`, in real time (ffmpeg -re)."""
    directory.mkdir(parents=True, exist_ok=True)

    def argv(cue: Cue) -> list[str]:
        name = f"{cue.due_at:%Y%m%dT%H%M%SZ}-{cue.key}.mp3"
        return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                "-i", str(cue.path), "-c", "copy", "-y", str(directory / name)]  # fmt: skip

    return CommandOutput(argv)


class Playout:
    """A queue and a thread in front of one Output."""

    def __init__(
        self,
        output: Output,
        report: Callable[[PlayEvent], None],
        now: Callable[[], datetime],
        name: str = "playout",
    ) -> None:
        self.output = output
        self.report = report
        self.now = now
        self.name = name
        self._queue: list[Cue] = []
        self._cond = threading.Condition()
        self._current: Cue | None = None
        self._stop_current = threading.Event()
        self._stop_reason = ""
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> Cue | None:
        with self._cond:
            return self._current

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._interrupt("speaker shut down")
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def submit(self, cue: Cue) -> None:
        """Queue a due cue; an emergency interrupts whatever non-emergency cue is playing."""
        with self._cond:
            if any(q.key == cue.key for q in self._queue) or (
                self._current is not None and self._current.key == cue.key
            ):
                return
            self._queue.append(cue)
            current = self._current
            if cue.rank >= EMERGENCY_RANK and current is not None and current.rank < cue.rank:
                self._interrupt(f"interrupted by {cue.label or cue.key}")
            self._cond.notify_all()

    def cancel(self, key: str) -> None:
        """Drop a queued cue, or stop it if it is playing (reported as interrupted)."""
        with self._cond:
            self._queue = [q for q in self._queue if q.key != key]
            if self._current is not None and self._current.key == key:
                self._interrupt("cancelled")

    def _interrupt(self, reason: str) -> None:
        # called with self._cond held
        if self._current is not None and not self._stop_current.is_set():
            self._stop_reason = reason
            self._stop_current.set()

    def _next(self) -> Cue | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            self._queue.sort(key=lambda c: (-c.rank, c.due_at))
            cue = self._queue.pop(0)
            self._current = cue
            self._stop_current = threading.Event()
            self._stop_reason = ""
            return cue

    def _run(self) -> None:
        while (cue := self._next()) is not None:
            try:
                self._play(cue)
            except Exception:  # the report callback failed: log it and keep the speaker alive
                log.exception("%s: reporting %s failed", self.name, cue.key)
            finally:
                with self._cond:
                    self._current = None

    def _play(self, cue: Cue) -> None:
        started = self.now()
        if started > cue.play_until:
            self.report(PlayEvent(cue.key, "missed", started, "too late to start"))
            return
        self.report(PlayEvent(cue.key, "started", started))
        try:
            self.output.play(cue, self._stop_current)
        except OutputError as exc:
            self.report(PlayEvent(cue.key, "failed", self.now(), str(exc)))
            return
        with self._cond:
            reason = self._stop_reason if self._stop_current.is_set() else ""
        if reason:
            self.report(PlayEvent(cue.key, "interrupted", self.now(), reason))
        else:
            self.report(PlayEvent(cue.key, "finished", self.now()))

"""Playout: one loudspeaker's queue of due cues, played one at a time in real time.

Used by the reference agent (on the loudspeaker box) and by the server's virtual
speakers. A cue is played when it is submitted (the caller decides when it is due);
an emergency cue interrupts a non-emergency one. Every outcome is reported as a
PlayEvent through a callback, never swallowed.
"""

from __future__ import annotations

import logging
import math
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

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
    order: int = 0  # among cues of one rank due together, the lower plays first


@dataclass(frozen=True)
class PlayEvent:
    key: str
    kind: str  # started | finished | interrupted | failed | missed
    at: datetime
    detail: str | None = None


class OutputError(Exception):
    """The output device could not play a cue."""


class Output(Protocol):
    def play(self, cue: Cue, stop: threading.Event) -> str | None:
        """Play `cue` in real time; return early when `stop` is set. Raises OutputError.
        May return the output's proof of play, which goes into the finished (or
        interrupted) event's detail."""
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


class FfmpegPlayer:
    """One ffmpeg process reading a file in real time (-re) into `output_args`. What it
    wrote is read from its -progress as it goes, to be told as proof of play."""

    def __init__(self, source: Path, output_args: list[str]) -> None:
        argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-nostats",
                "-progress", "pipe:1", "-re", "-i", str(source), *output_args]  # fmt: skip
        self.progress: dict[str, str] = {}
        self.errors: deque[str] = deque(maxlen=10)  # its last error lines
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise OutputError(f"cannot start ffmpeg: {exc}") from exc
        # Both pipes are drained as ffmpeg writes, so a chatty ffmpeg never blocks.
        self._readers = [
            threading.Thread(target=self._read, args=(pipe, sink), name="ffmpeg", daemon=True)
            for pipe, sink in ((self.proc.stdout, self._progress), (self.proc.stderr, self._error))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(pipe: IO[bytes], sink: Callable[[str], None]) -> None:
        for line in pipe:
            sink(line.decode(errors="replace").strip())

    def _progress(self, line: str) -> None:
        key, _, value = line.partition("=")
        self.progress[key] = value

    def _error(self, line: str) -> None:
        self.errors.append(line)

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait up to `seconds`; True as soon as ffmpeg has ended or `stop` is set."""
        deadline = time.monotonic() + seconds
        while self.proc.poll() is None and not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            stop.wait(min(left, 0.05))
        return True

    def finish(self, stop: threading.Event) -> None:
        """Terminate ffmpeg if `stop` is set; raise OutputError if it failed on its own."""
        if self.proc.poll() is None:
            self.proc.terminate()  # ffmpeg closes its output properly on SIGTERM
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        if self.proc.returncode != 0 and not stop.is_set():
            errors = " / ".join(self.errors)
            raise OutputError(f"ffmpeg exited with {self.proc.returncode}: {errors}")

    def written(self) -> str:
        """How much audio ffmpeg says it wrote, e.g. "4.3 s of audio (17,096 bytes)"."""
        micros = self.progress.get("out_time_us", "")
        size = self.progress.get("total_size", "")
        seconds = int(micros) / 1e6 if micros.isdigit() else 0.0
        return f"{seconds:.1f} s of audio" + (f" ({int(size):,} bytes)" if size.isdigit() else "")


class FfmpegOutput:
    """Plays each cue through ffmpeg in real time; returns what ffmpeg wrote as proof."""

    def __init__(self, output_args: list[str], describe: str) -> None:
        self.output_args = output_args
        self.describe = describe

    def play(self, cue: Cue, stop: threading.Event) -> str:
        player = FfmpegPlayer(cue.path, self.output_args)
        player.wait(stop, math.inf)
        player.finish(stop)
        return f"ffmpeg wrote {player.written()} to {self.describe}"


def alsa_output(device: str = "default") -> FfmpegOutput:
    """A sound card through ALSA (`default`, `plughw:1,0`, …; `null` discards the audio)."""
    return FfmpegOutput(["-f", "alsa", device], f"ALSA device {device!r}")


class Playout:
    """A queue and a thread in front of one Output."""

    def __init__(
        self,
        output: Output,
        report: Callable[[PlayEvent], None],
        now: Callable[[], datetime],
        name: str = "playout",
        settle_seconds: float = 0.0,
    ) -> None:
        self.output = output
        self.report = report
        self.now = now
        self.name = name
        # When idle, wait this long after the first cue arrives so that cues due together
        # (submitted one by one) start in priority order; an emergency never waits.
        self.settle_seconds = settle_seconds
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
            idle = not self._queue
            while not self._queue and not self._closed:
                self._cond.wait()
            if idle and self.settle_seconds > 0:
                self._cond.wait_for(
                    lambda: self._closed or any(q.rank >= EMERGENCY_RANK for q in self._queue),
                    timeout=self.settle_seconds,
                )
            if self._closed:
                return None
            self._queue.sort(key=lambda c: (-c.rank, c.due_at, c.order))
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
            proof = self.output.play(cue, self._stop_current)
        except OutputError as exc:
            self.report(PlayEvent(cue.key, "failed", self.now(), str(exc)))
            return
        with self._cond:
            reason = self._stop_reason if self._stop_current.is_set() else ""
        if reason:
            detail = f"{reason}; {proof}" if proof else reason
            self.report(PlayEvent(cue.key, "interrupted", self.now(), detail))
        else:
            self.report(PlayEvent(cue.key, "finished", self.now(), proof))

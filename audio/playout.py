"""Playout: one loudspeaker's queue of due cues, played one at a time in real time.

Used by the reference agent (on the loudspeaker box) and by the server's virtual
speakers. A cue is played when it is submitted (the caller decides when it is due);
an emergency cue interrupts a non-emergency one. Every outcome is reported as a
PlayEvent through a callback, never swallowed.

A cue is an audio file, or a relay (tiếp sóng): a live http(s) stream read for the
cue's duration by `Relay`, whatever the output, and counted as proof of play.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import math
import queue
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

log = logging.getLogger(__name__)

EMERGENCY_RANK = 2  # rank: 0 normal, 1 priority (goes first), 2 emergency (interrupts)
RELAY_TIMEOUT = 10.0  # seconds to connect to a relay stream, and at most between two reads
RELAY_CHUNK = 8192


@dataclass(frozen=True)
class Cue:
    key: str
    path: Path | None  # None for a relay
    duration_seconds: float  # a relay: how long to relay the stream
    rank: int
    due_at: datetime
    play_until: datetime
    label: str = ""
    order: int = 0  # among cues of one rank due together, the lower plays first
    # A relay (tiếp sóng): play this live stream for `duration_seconds` instead of `path`.
    stream_url: str | None = None


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


def audio_file(cue: Cue) -> Path:
    if cue.path is None:
        raise OutputError(f"cue {cue.key} has neither an audio file nor a stream")
    return cue.path


def _reason(exc: BaseException) -> str:
    if isinstance(exc, HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


class Relay:
    """A cue's live stream: opened at once (OutputError if it cannot be), then read for
    the cue's duration. The stream is live, so reading it takes real time. Only a plain
    GET goes out: no token, no credentials. The socket is read in a thread of its own,
    so a stalled stream never holds up a stop (an emergency waits for nothing)."""

    def __init__(self, cue: Cue) -> None:
        self.url = cue.stream_url or ""
        self.seconds = cue.duration_seconds
        self.received = 0  # bytes
        self.elapsed = 0.0  # seconds
        self.ended = ""  # why the stream stopped before its time, if it did
        self.refused = ""  # why the output stopped taking it, if it did
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
            raise OutputError("cannot open the relay stream: not an http(s) URL without a password")
        request = Request(self.url, headers={"User-Agent": "Loa relay"})
        try:
            self.stream = urlopen(request, timeout=RELAY_TIMEOUT)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            if isinstance(exc, HTTPError):
                exc.close()
            raise OutputError(f"cannot open the relay stream {self.url}: {_reason(exc)}") from None
        kind = self.stream.headers.get_content_type()
        if kind.startswith("text/"):  # a web page (an error, a player), not the stream
            self.close()
            raise OutputError(f"cannot open the relay stream {self.url}: it answers {kind}")

    def run(self, stop: threading.Event, write: Callable[[bytes], object]) -> None:
        """Pass the stream to `write` until its time is up, `stop` is set or it ends.
        Raises OutputError if `write` fails."""
        chunks: queue.Queue[bytes | str] = queue.Queue()  # a str: why the stream ended
        done = threading.Event()
        threading.Thread(target=self._read, args=(chunks, done), name="relay", daemon=True).start()
        begin = time.monotonic()
        try:
            while not stop.is_set() and (left := self.seconds - (time.monotonic() - begin)) > 0:
                try:
                    chunk = chunks.get(timeout=min(left, 0.05))
                except queue.Empty:
                    continue
                if isinstance(chunk, str):
                    self.ended = chunk
                    break
                try:
                    write(chunk)
                except (OSError, ValueError) as exc:
                    if stop.is_set():
                        break  # the player was stopped on purpose
                    self.refused = f"the player stopped taking it ({exc})"
                    raise OutputError(f"cannot play the relay stream {self.url}: {exc}") from None
                self.received += len(chunk)
        finally:
            self.elapsed = time.monotonic() - begin
            done.set()  # the reader closes the stream after its current read

    def _read(self, chunks: queue.Queue[bytes | str], done: threading.Event) -> None:
        try:
            while not done.is_set():
                try:
                    chunk = self.stream.read1(RELAY_CHUNK)
                except Exception as exc:  # a timeout too; this thread must not die unheard
                    chunks.put(f"the stream broke off ({_reason(exc)})")
                    return
                chunks.put(chunk or "the stream ended")
                if not chunk:
                    return
        finally:
            self.close()

    def close(self) -> None:
        """Close the stream (done by `run`; by the caller only if it never runs)."""
        self.stream.close()

    def proof(self, stop: threading.Event) -> str:
        """What was relayed; OutputError if the stream sent nothing at all."""
        if self.received == 0 and self.ended and not stop.is_set():
            raise OutputError(f"the relay stream {self.url} sent nothing: {self.ended}")
        said = f"relayed {self.received:,} bytes from {self.url} over {self.elapsed:.1f} s"
        if self.ended or self.refused:
            said += f" of {self.seconds:.1f} s: {self.ended or self.refused}"
        return said


def feed(relay: Relay, pipe: IO[bytes], stop: threading.Event) -> threading.Thread:
    """Relay into a player's stdin in a thread, closed at the end (EOF ends the player)."""

    def write(chunk: bytes) -> None:
        pipe.write(chunk)
        pipe.flush()

    def run() -> None:
        try:
            relay.run(stop, write)
        except OutputError:
            pass  # the player stopped reading: its own exit says why
        finally:
            with contextlib.suppress(OSError):  # a broken pipe: the player is gone
                pipe.close()

    thread = threading.Thread(target=run, name="relay", daemon=True)
    thread.start()
    return thread


class SilentOutput:
    """Takes as long as the audio lasts and makes no sound (virtual speakers). A relay's
    stream is read and discarded: that proves it was there."""

    def play(self, cue: Cue, stop: threading.Event) -> str | None:
        if cue.stream_url:
            relay = Relay(cue)
            relay.run(stop, lambda chunk: None)
            return relay.proof(stop)
        stop.wait(cue.duration_seconds)
        return None


class CommandOutput:
    """Plays through a command that lasts as long as the audio; stopping terminates it.
    A relay's stream goes to the command's stdin: its argv reads `pipe:0`."""

    def __init__(self, argv: Callable[[Cue], list[str]]) -> None:
        self.argv = argv

    def play(self, cue: Cue, stop: threading.Event) -> str | None:
        relay = Relay(cue) if cue.stream_url else None
        argv = self.argv(cue)
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if relay else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            if relay is not None:
                relay.close()
            raise OutputError(f"cannot start {argv[0]}: {exc}") from exc
        halt = threading.Event()
        feeder = feed(relay, proc.stdin, halt) if relay and proc.stdin else None
        while proc.poll() is None:
            if stop.wait(0.05):
                halt.set()
                proc.terminate()  # ffmpeg finishes the file it was writing on SIGTERM
                proc.wait(timeout=10)
                break
        if feeder is not None:
            halt.set()
            feeder.join(timeout=5)
        proof = relay.proof(stop) if relay else None  # a silent stream is the first cause
        if proc.returncode != 0 and not stop.is_set():
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise OutputError(f"{argv[0]} exited with {proc.returncode}: {err}")
        return proof


def input_of(cue: Cue) -> str:
    """What a player reads: the cue's file, or its stdin for a relay."""
    return "pipe:0" if cue.stream_url else str(audio_file(cue))


def sound_card_output() -> CommandOutput:
    """The machine's default sound card, through ffplay."""
    return CommandOutput(
        lambda cue: ["ffplay", "-nodisp", "-autoexit", "-loglevel", "error", input_of(cue)]
    )


class FileSinkOutput:
    """'Plays' each cue into its own MP3 in `directory`, in real time: a file through
    ffmpeg -re, a relay's bytes as they arrive."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.files = CommandOutput(self._argv)

    def target(self, cue: Cue) -> Path:
        return self.directory / f"{cue.due_at:%Y%m%dT%H%M%SZ}-{cue.key}.mp3"

    def _argv(self, cue: Cue) -> list[str]:
        return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                "-i", str(audio_file(cue)), "-c", "copy", "-y", str(self.target(cue))]  # fmt: skip

    def play(self, cue: Cue, stop: threading.Event) -> str | None:
        if not cue.stream_url:
            return self.files.play(cue, stop)
        relay = Relay(cue)  # first: a stream that cannot be opened leaves no file
        with self.target(cue).open("wb") as fh:
            relay.run(stop, fh.write)
        return relay.proof(stop)


def file_sink_output(directory: Path) -> FileSinkOutput:
    return FileSinkOutput(directory)


class FfmpegPlayer:
    """One ffmpeg process reading a file in real time (-re), or a relay's live stream
    from its stdin, into `output_args`. What it wrote is read from its -progress as it
    goes, to be told as proof of play; a relay's own proof is `relayed` once finished."""

    def __init__(self, source: Path | Relay, output_args: list[str]) -> None:
        self.relay = source if isinstance(source, Relay) else None
        self.relayed: str | None = None
        read = ["-i", "pipe:0"] if isinstance(source, Relay) else ["-re", "-i", str(source)]
        argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-nostats",
                "-progress", "pipe:1", *read, *output_args]  # fmt: skip
        self.progress: dict[str, str] = {}
        self.errors: deque[str] = deque(maxlen=10)  # its last error lines
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if self.relay else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            if self.relay is not None:
                self.relay.close()
            raise OutputError(f"cannot start ffmpeg: {exc}") from exc
        self._halt = threading.Event()
        self._feeder = None
        if self.relay is not None and self.proc.stdin is not None:
            self._feeder = feed(self.relay, self.proc.stdin, self._halt)
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
        """Terminate ffmpeg if `stop` is set; raise OutputError if it failed on its own
        (or the relay stream sent nothing)."""
        self._halt.set()
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
        if self._feeder is not None and self.relay is not None:
            self._feeder.join(timeout=5)
            self.relayed = self.relay.proof(stop)  # a silent stream is the first cause
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
        player = FfmpegPlayer(Relay(cue) if cue.stream_url else audio_file(cue), self.output_args)
        player.wait(stop, math.inf)
        player.finish(stop)
        wrote = f"ffmpeg wrote {player.written()} to {self.describe}"
        return f"{player.relayed}; {wrote}" if player.relayed else wrote


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

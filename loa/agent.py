"""The reference loudspeaker agent.

It long-polls the server for its next hours of schedule, downloads and verifies the
audio ahead of time, plays each item by its own clock (corrected by the server's
time while it can reach it), and keeps its reports in an outbox on disk until the
server accepts them: a commune that loses its link or its power still plays, and
the as-run log learns about it later (store-and-forward). A relay item (tiếp sóng) has
no audio to fetch: at its time the agent plays its live stream for its duration.

Nothing the server or the disk does may stop it playing what it holds: one bad item,
one missing file, a refused report or a full disk is logged and handled on its own.
"""

from __future__ import annotations

import errno
import importlib.metadata
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import requests

from audio.playout import Cue, Output, PlayEvent, Playout
from audio.render import file_sha256
from loa.agent_mqtt import CommandListener
from scheduler.clock import Clock, SystemClock

log = logging.getLogger("loa.agent")

POLL_WAIT_SECONDS = 25
MQTT_HEARTBEAT_SECONDS = 30  # with MQTT wake-ups, a plain poll this often says "alive"
HTTP_TIMEOUT_SECONDS = 10
KEEP_PLAYED = timedelta(days=2)  # played items, and audio no item needs, are kept this long
PRUNE_EVERY = timedelta(minutes=5)  # pruning scans the cache directory: not at every poll
WARN_MISSING_AUDIO_AFTER = timedelta(minutes=3)
REPORT_BATCH = 500  # the server takes at most 1,000 reports in one request
REPORT_PAUSE = 10.0  # the outbox is tried this often even when nothing new is in it
REPORT_RETRY = 5.0  # … and this soon again when the server could not take it
TERMINAL = frozenset({"finished", "interrupted", "failed", "missed"})
RESTARTED = "the agent restarted (killed or power lost) while this was on the speaker; not replayed"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ServerRefused(Exception):
    """The server rejected the agent's token: retrying cannot help."""


class ServerUnreachable(Exception):
    """No answer, a server-side error or a garbled answer: try again later."""


class FetchFailed(Exception):
    """One audio file could not be had (gone, or failed its checksum): try it again later."""


@dataclass(frozen=True)
class Refusal:
    """Why the server refused a batch of reports (a 4xx other than 401)."""

    status: int
    error: str
    detail: str


class AgentClient:
    """The agent's side of /api/v1/agent/*, one method per action."""

    def __init__(self, server: str, token: str, session: requests.Session | None = None) -> None:
        self.server = server.rstrip("/") + "/"
        self.http = session or requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, timeout: float, **kwargs: Any) -> requests.Response:
        url = urljoin(self.server, path.lstrip("/"))
        try:
            response = self.http.request(method, url, timeout=timeout, **kwargs)
        except requests.RequestException as exc:
            raise ServerUnreachable(f"{method} {url}: {exc}") from exc
        status = response.status_code
        if status == 401:
            raise ServerRefused(f"HTTP 401: {_detail(response)}")
        if status >= 500 or status in (408, 429):
            raise ServerUnreachable(f"HTTP {status}: {_detail(response)}")
        return response

    def schedule(self, version: str | None, wait: float, heartbeat: dict[str, Any]) -> Any:
        """The schedule, long-polled; `heartbeat` rides along as query parameters."""
        params = dict(heartbeat)
        if version:
            params.update(version=version, wait=wait)
        response = self._call(
            "GET", "api/v1/agent/schedule", HTTP_TIMEOUT_SECONDS + wait, params=params
        )
        if response.status_code == 403:  # e.g. a person's token: no schedule will ever come
            raise ServerRefused(f"HTTP 403: {_detail(response)}")
        if response.status_code != 200:
            raise ServerUnreachable(f"schedule: HTTP {response.status_code}: {_detail(response)}")
        try:
            return response.json()
        except ValueError as exc:
            raise ServerUnreachable(f"schedule: the answer is not JSON: {exc}") from None

    def download(self, url: str) -> Iterator[bytes]:
        """The audio at `url`, in chunks."""
        response = self._call("GET", url, 120, stream=True)
        with response:
            if response.status_code == 403:
                raise ServerRefused(f"HTTP 403: {_detail(response)}")
            if response.status_code != 200:
                raise FetchFailed(f"HTTP {response.status_code}: {_detail(response)}")
            try:
                yield from response.iter_content(1 << 16)
            except requests.RequestException as exc:
                raise ServerUnreachable(f"GET {url}: {exc}") from exc

    def report(self, reports: list[dict[str, Any]]) -> Refusal | None:
        """Send one batch, which the server applies whole or not at all; None when accepted."""
        response = self._call(
            "POST", "api/v1/agent/reports", HTTP_TIMEOUT_SECONDS, json={"reports": reports}
        )
        if response.status_code < 400:
            return None
        error, detail = _error(response)
        return Refusal(response.status_code, error, detail)


def _error(response: requests.Response) -> tuple[str, str]:
    try:
        data = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(data, dict):
        return "", str(data)[:200]
    return str(data.get("error", "")), str(data.get("detail", ""))


def _detail(response: requests.Response) -> str:
    error, detail = _error(response)
    return f"{error}: {detail}" if error else detail


def _aware(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an ISO 8601 time")
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return at


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _stream_url(value: Any) -> str | None:
    """A relay's stream: an http(s) URL on any host, never with credentials."""
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"stream_url {value!r} is not an http(s) URL")
    if "@" in parts.netloc:
        raise ValueError("stream_url must not hold a user name or password")
    return str(value)


@dataclass(frozen=True)
class Item:
    delivery_id: int
    title: str
    rank: int
    scheduled_at: datetime
    play_until: datetime
    duration_seconds: float  # a relay: how long to relay the stream
    sha256: str | None  # None for a relay
    audio_url: str | None  # None for a relay
    status: str = "scheduled"  # as the server last saw it: "delivered" once it knows we hold it
    stream_url: str | None = None  # a relay (tiếp sóng): the live stream to play

    @property
    def relay(self) -> bool:
        return self.stream_url is not None

    @classmethod
    def from_json(cls, data: Any) -> Item:
        """An item of the schedule; ValueError for anything malformed (it is never played)."""
        if not isinstance(data, dict):
            raise ValueError("an item must be a JSON object")
        try:
            stream_url = _stream_url(data.get("stream_url"))
            item = cls(
                delivery_id=_int(data["delivery_id"]),
                title=str(data.get("title", "")),
                rank=_int(data.get("rank", 0)),
                scheduled_at=_aware(data["scheduled_at"]),
                play_until=_aware(data["play_until"]),
                duration_seconds=float(data["duration_seconds"]),
                sha256=None if stream_url else str(data["sha256"]),
                audio_url=None if stream_url else str(data["audio_url"]),
                status=str(data.get("status", "scheduled")),
                stream_url=stream_url,
            )
        except KeyError as exc:
            raise ValueError(f"missing {exc}") from None
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        if not math.isfinite(item.duration_seconds) or item.duration_seconds < 0:
            raise ValueError(f"duration_seconds {item.duration_seconds} is not a duration")
        if item.relay:
            if data.get("sha256") is not None or data.get("audio_url") is not None:
                raise ValueError("a relay item has no sha256 or audio_url")
            if item.duration_seconds == 0:
                raise ValueError("a relay item needs a duration")
            return item
        if not _SHA256.fullmatch(str(item.sha256)):  # it names a file in the cache
            raise ValueError(f"sha256 {item.sha256!r} is not 64 hex digits")
        url = urlsplit(item.audio_url)
        if url.scheme or url.netloc:  # the agent's token goes with it: never to another host
            raise ValueError(f"audio_url {item.audio_url!r} is not a path on this server")
        return item

    def to_json(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "title": self.title,
            "rank": self.rank,
            "scheduled_at": self.scheduled_at.isoformat(),
            "play_until": self.play_until.isoformat(),
            "duration_seconds": self.duration_seconds,
            "sha256": self.sha256,
            "audio_url": self.audio_url,
            "status": self.status,
            "stream_url": self.stream_url,
        }


class Disk:
    """The cache's filesystem. Every write of the agent and its measure of free space go
    through here: the one seam where tests fake a full disk."""

    def free_bytes(self, path: Path) -> int:
        return shutil.disk_usage(path).free

    def write(self, fh: IO[bytes], data: bytes) -> None:
        fh.write(data)


def _agent_version() -> str:
    try:
        return "loa-agent/" + importlib.metadata.version("loa")
    except importlib.metadata.PackageNotFoundError:
        return "loa-agent/unknown"


class Agent:
    def __init__(
        self,
        client: AgentClient,
        cache_dir: Path,
        output: Output,
        clock: Clock | None = None,
        poll_wait: float = POLL_WAIT_SECONDS,
        warn_missing_after: timedelta = WARN_MISSING_AUDIO_AFTER,
        disk: Disk | None = None,
    ) -> None:
        self.client = client
        self.poll_wait = poll_wait
        self.warn_missing_after = warn_missing_after
        self.disk = disk or Disk()
        self.cache = cache_dir
        self.audio_dir = cache_dir / "audio"
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = cache_dir / "outbox.jsonl"
        self.rejected = cache_dir / "rejected.jsonl"
        self.clock = clock or SystemClock()
        self.version_string = _agent_version()
        self.offset = timedelta(0)  # server time minus our clock, learnt at each poll
        self.items: dict[int, Item] = {}
        self.submitted: set[int] = set()  # handed to the speaker: never again
        self.last_event: dict[int, dict[str, str]] = {}  # of submitted items: {kind, at}
        self.first_seen: dict[int, datetime] = {}
        self.warned: set[int] = set()
        self.version: str | None = None
        self.cache_error: str | None = None  # told to the server until a download succeeds
        self._told_delivered: set[int] = set()  # "delivered" sent by this process
        # MQTT wake-ups when the server pushes that way; False: it said so but cannot be used.
        self.wakeups: CommandListener | bool | None = None
        self._wake = threading.Event()
        self.refused = False
        self._token_confirmed = False
        self._pruned_at: datetime | None = None
        self._unwritten: list[str] = []  # reports the disk could not take yet
        self._lock = threading.Lock()  # state in memory, outbox and state files
        self._flush_lock = threading.Lock()  # one flush at a time, for its whole length
        self._stop = threading.Event()
        self._schedule_changed = threading.Event()
        self._outbox_changed = threading.Event()
        self.playout = Playout(output, self._on_play_event, self.now, name="agent-playout")
        self._load_state()

    # --- time and state ------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now() + self.offset

    def _load_state(self) -> None:
        for tmp in self.cache.glob(".tmp-*"):  # left by a kill in the middle of a write
            tmp.unlink(missing_ok=True)
        state_path = self.cache / "state.json"
        if not state_path.exists():
            return
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            self.offset = timedelta(seconds=state.get("offset_seconds", 0.0))
            self.items = {i["delivery_id"]: Item.from_json(i) for i in state.get("items", [])}
            self.submitted = set(state.get("submitted", []))
            if "events" in state:
                self.last_event = {int(k): v for k, v in state["events"].items()}
            else:  # written by an agent that kept no events: take its items as ended
                self.last_event = {d: {"kind": "finished", "at": ""} for d in self.submitted}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("agent state unreadable, starting afresh: %s", exc)
            return
        now = self.now()
        self.first_seen = dict.fromkeys(self.items, now)
        # Killed while an item was on the speaker: it is over, and it is never replayed.
        cut = [
            d
            for d in sorted(self.submitted)
            if self.last_event.get(d, {}).get("kind") not in TERMINAL
        ]
        for delivery_id in cut:
            log.warning("delivery %s: %s", delivery_id, RESTARTED)
            at = self._cut_at(delivery_id, now)
            self.queue_report(self._report(delivery_id, "interrupted", at, RESTARTED))
            self.last_event[delivery_id] = {"kind": "interrupted", "at": at.isoformat()}
        if cut:
            self._save_state()

    def _cut_at(self, delivery_id: int, now: datetime) -> datetime:
        """When an item cut by a restart stopped, at the latest: after a long power cut,
        its end of play is closer to the truth than the restart time."""
        last = self.last_event.get(delivery_id, {})
        item = self.items.get(delivery_id)
        if last.get("kind") != "started" or item is None:
            return now
        try:
            return min(now, _aware(last.get("at")) + timedelta(seconds=item.duration_seconds))
        except ValueError:
            return now

    def _save_state(self) -> None:
        with self._lock:
            state = {
                "offset_seconds": self.offset.total_seconds(),
                "items": [i.to_json() for i in self.items.values()],
                "submitted": sorted(self.submitted),
                "events": {str(k): v for k, v in self.last_event.items()},
            }
            try:
                self._replace(self.cache / "state.json", json.dumps(state).encode("utf-8"))
            except OSError as exc:  # the old state stays whole; this one is in memory
                log.error("cannot save the agent state: %s", exc)

    def _replace(self, path: Path, data: bytes) -> None:
        """Replace `path` whole (temp file, fsync, rename): a kill, a power cut or a full
        disk leaves the old file or the new one, never half of one."""
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                self.disk.write(fh, data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _append(self, path: Path, lines: list[str]) -> None:
        """Append whole lines or nothing: a failed write is cut back off."""
        with path.open("ab") as fh:
            size = fh.tell()
            try:
                self.disk.write(fh, "".join(line + "\n" for line in lines).encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            except OSError:
                fh.truncate(size)
                raise

    def _audio_path(self, item: Item) -> Path:
        return self.audio_dir / f"{item.sha256}.mp3"

    def _ready(self, item: Item) -> bool:
        """The item can play: its audio is cached, or it is a relay (it needs its URL only)."""
        return item.relay or self._audio_path(item).exists()

    # --- outbox --------------------------------------------------------------------------

    def _report(
        self, delivery_id: int, kind: str, at: datetime, detail: str | None = None
    ) -> dict[str, Any]:
        return {
            "delivery_id": delivery_id,
            "kind": kind,
            "at": at.isoformat(),
            "detail": detail,
            "clock_offset_seconds": round(self.offset.total_seconds(), 3),
        }

    def queue_report(self, report: dict[str, Any]) -> None:
        """Put a report in the outbox (on disk; in memory while the disk is full)."""
        with self._lock:
            self._unwritten.append(json.dumps(report, ensure_ascii=False))
            self._write_unwritten()
        self._outbox_changed.set()

    def _write_unwritten(self) -> None:
        # called with self._lock held
        if not self._unwritten:
            return
        try:
            self._append(self.outbox, self._unwritten)
        except OSError as exc:
            log.error(
                "outbox not writable, %d reports held in memory: %s", len(self._unwritten), exc
            )
            return
        self._unwritten.clear()

    def _outbox_lines(self) -> list[str]:
        # called with self._lock held
        if not self.outbox.exists():
            return []
        text = self.outbox.read_text(encoding="utf-8", errors="replace")  # a torn line stays a line
        return [line for line in text.splitlines() if line]

    def flush(self) -> None:
        """Send the outbox in batches. Reports stay queued while the server cannot be
        reached; a report the server refuses moves to rejected.jsonl with its reason."""
        with self._flush_lock:  # two flushes at once would remove each other's lines
            while True:
                with self._lock:
                    self._write_unwritten()
                    batch = self._outbox_lines()[:REPORT_BATCH]
                if not batch:
                    return
                reports, torn = [], []
                for line in batch:
                    try:
                        report = json.loads(line)
                    except ValueError:
                        report = None
                    if isinstance(report, dict):
                        reports.append(report)
                    else:  # torn by a power cut
                        torn.append({"line": line, "error": "unreadable", "detail": ""})
                self._keep_rejected(torn + self._send(reports))
                with self._lock:  # only a flush removes lines, so the batch is still first
                    rest = self._outbox_lines()[len(batch) :]
                    self._replace(self.outbox, "".join(x + "\n" for x in rest).encode("utf-8"))

    def _keep_rejected(self, rejected: list[dict[str, Any]]) -> None:
        """Keep refused reports, with why, for a person to read (before they leave the outbox)."""
        if not rejected:
            return
        at = self.now().isoformat()
        for r in rejected:
            r["at"] = at
            log.error("report refused (%s %s): %s", r["error"], r["detail"], r.get("report", r))
        with self._lock:
            self._append(self.rejected, [json.dumps(r, ensure_ascii=False) for r in rejected])

    def _send(self, reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send reports; returns those the server refused, each with its reason. The server
        applies a batch whole or not at all, so a refused batch is halved until each bad
        report is alone and every good one has gone through."""
        if not reports:
            return []
        refusal = self.client.report(reports)
        if refusal is None:
            return []
        if refusal.status == 403 and refusal.error == "forbidden" and not self._token_confirmed:
            # "forbidden" is also the answer to a token that is not an endpoint's: until a
            # schedule answer proves this one good, the reports are not to blame.
            raise ServerUnreachable(f"reports refused before the token was confirmed: {refusal}")
        if len(reports) > 1:
            half = len(reports) // 2
            return self._send(reports[:half]) + self._send(reports[half:])
        return [
            {
                "report": reports[0],
                "status": refusal.status,
                "error": refusal.error,
                "detail": refusal.detail,
            }
        ]

    def _on_play_event(self, event: PlayEvent) -> None:
        delivery_id = int(event.key)
        report = self._report(delivery_id, event.kind, event.at, event.detail)
        item = self.items.get(delivery_id)
        if event.kind == "finished" and item is not None and not item.relay:
            try:
                report["sha256"] = file_sha256(self._audio_path(item))
            except OSError as exc:
                log.error("delivery %s: cannot hash its audio: %s", delivery_id, exc)
        log.info(
            "delivery %s %s%s", delivery_id, event.kind, f": {event.detail}" if event.detail else ""
        )
        self.queue_report(report)  # first: a kill between the two repeats it, never loses it
        with self._lock:
            self.last_event[delivery_id] = {"kind": event.kind, "at": event.at.isoformat()}
        if event.kind in TERMINAL:  # "started" waits for the next save: the sound comes first
            self._save_state()

    # --- sync ----------------------------------------------------------------------------

    def heartbeat(self) -> dict[str, Any]:
        """What the agent says of itself with every schedule request (query parameters)."""
        beat: dict[str, Any] = {
            "agent_version": self.version_string,
            "clock_offset_seconds": round(self.offset.total_seconds(), 3),
            "missing_audio": self.missing_audio(),
        }
        try:
            beat["cache_free_bytes"] = self.disk.free_bytes(self.cache)
        except OSError as exc:
            log.warning("cannot measure the cache's free space: %s", exc)
        if self.cache_error:
            beat["cache_error"] = self.cache_error
        return beat

    def missing_audio(self) -> int:
        """How many items still to play have no verified audio yet."""
        with self._lock:
            waiting = [i for i in self.items.values() if i.delivery_id not in self.submitted]
        return sum(not self._ready(i) for i in waiting)

    def sync_once(self, wait: float) -> None:
        """One poll: send the heartbeat, learn the time, take the schedule, then fetch the
        audio it lacks. A malformed item is skipped and a file that cannot be had is tried
        again at the next poll; neither holds the rest of the schedule back."""
        data = self.client.schedule(self.version, wait, self.heartbeat())
        received = self.clock.now()
        try:
            server_time = _aware(data["server_time"])
            version = data["version"]
            listed = data["items"]
            if not isinstance(version, str) or not isinstance(listed, list):
                raise ValueError("version must be a string and items a list")
        except (KeyError, TypeError, ValueError) as exc:
            raise ServerUnreachable(f"malformed schedule answer: {exc!r}") from None
        self._token_confirmed = True
        self._listen_for_wakeups(data)
        fresh: dict[int, Item] = {}
        for raw in listed:
            try:
                item = Item.from_json(raw)
            except ValueError as exc:
                log.error("skipped a malformed schedule item (%s): %.300r", exc, raw)
                continue
            fresh[item.delivery_id] = item
        with self._lock:
            self.offset = server_time - received
            now = self.now()
            # Remember what was handed to the speaker (so it never plays twice) for a while;
            # anything else the server no longer lists was cancelled.
            self.items = {
                k: v
                for k, v in self.items.items()
                if k in self.submitted and v.scheduled_at > now - KEEP_PLAYED
            }
            self.items.update(fresh)
            self.submitted &= set(self.items)
            self.last_event = {k: v for k, v in self.last_event.items() if k in self.submitted}
            self.first_seen = {k: self.first_seen.get(k, now) for k in self.items}
            self.warned &= set(self.items)
            self.version = version
        self._save_state()
        self._schedule_changed.set()
        self._prune()
        self._fetch_missing()

    def _listen_for_wakeups(self, data: dict[str, Any]) -> None:
        """When the server pushes by MQTT, subscribe to this endpoint's commands (once)."""
        push, endpoint = data.get("mqtt"), data.get("endpoint")
        if self.wakeups is not None or not isinstance(push, dict) or not isinstance(endpoint, dict):
            return
        try:
            listener = CommandListener(
                str(push.get("url")),
                int(endpoint["id"]),
                self._on_command,
                on_connect=self._wake.set,  # commands may have been lost meanwhile: sync
            )
        except (KeyError, TypeError, ValueError) as exc:
            log.error("cannot use the server's MQTT push (%s); long-polling instead", exc)
            self.wakeups = False
            return
        listener.start()
        self.wakeups = listener
        log.info("listening for wake-ups on %s", listener.topic)

    def _on_command(self, command: dict[str, Any]) -> None:
        if command.get("action") == "sync":
            self._wake.set()  # from paho's thread: the main loop polls at once

    def _fetch_missing(self) -> None:
        with self._lock:
            waiting = [i for i in self.items.values() if i.delivery_id not in self.submitted]
        for item in sorted(waiting, key=lambda i: (-i.rank, i.scheduled_at)):
            if self._stop.is_set():
                return
            try:
                self._fetch(item)
            except FetchFailed as exc:
                log.warning("audio for delivery %s not fetched, tried again at the next poll: %s",
                            item.delivery_id, exc)  # fmt: skip
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    self.cache_error = "disk_full"
                log.error("audio for delivery %s not stored: %s", item.delivery_id, exc)
            except ServerUnreachable as exc:  # the link is gone: the next poll tries again
                log.warning("audio downloads paused: %s", exc)
                return

    def _fetch(self, item: Item) -> None:
        if self._ready(item):
            # Audio shared with another item (a repeat, the same bulletin elsewhere), or a
            # relay, which has nothing to fetch: this delivery is ready too, and the server
            # should know it.
            if item.status == "scheduled" and item.delivery_id not in self._told_delivered:
                self._told_delivered.add(item.delivery_id)
                self.queue_report(self._report(item.delivery_id, "delivered", self.now()))
            return
        assert item.audio_url is not None  # not a relay
        path = self._audio_path(item)
        fd, tmp_name = tempfile.mkstemp(dir=self.audio_dir, prefix=".tmp-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in self.client.download(item.audio_url):
                    self.disk.write(fh, chunk)
            if file_sha256(tmp) != item.sha256:
                raise FetchFailed(f"{item.audio_url} failed its SHA-256 check")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self.cache_error = None
        self._told_delivered.add(item.delivery_id)
        log.info("delivery %s cached: %s", item.delivery_id, item.title)
        self.queue_report(self._report(item.delivery_id, "delivered", self.now()))

    def _prune(self) -> None:
        """Delete audio that no item needs any more once its file is older than KEEP_PLAYED."""
        now = self.clock.now()  # file times are the machine's own clock
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        with self._lock:
            needed = {self._audio_path(i).name for i in self.items.values() if not i.relay}
        oldest = (now - KEEP_PLAYED).timestamp()
        for path in self.audio_dir.iterdir():
            try:
                if path.name not in needed and path.stat().st_mtime < oldest:
                    path.unlink()
                    log.info("pruned %s from the audio cache", path.name)
            except OSError as exc:
                log.warning("cannot prune %s: %s", path.name, exc)

    # --- timing --------------------------------------------------------------------------

    def due_cues(self) -> list[Cue]:
        """Items whose time has come, as cues; each is handed over once."""
        now = self.now()
        cues = []
        with self._lock:
            for item in sorted(self.items.values(), key=lambda i: (i.scheduled_at, -i.rank)):
                if item.delivery_id in self.submitted or item.scheduled_at > now:
                    continue
                if not self._ready(item):
                    continue  # maybe it arrives before play_until
                self.submitted.add(item.delivery_id)
                cues.append(
                    Cue(
                        key=str(item.delivery_id),
                        path=None if item.relay else self._audio_path(item),
                        stream_url=item.stream_url,
                        duration_seconds=item.duration_seconds,
                        rank=item.rank,
                        due_at=item.scheduled_at,
                        play_until=item.play_until,
                        label=item.title,
                    )
                )
        return cues

    def play_due(self) -> None:
        """Hand the due items to the speaker, and warn of audio still missing."""
        cues = self.due_cues()
        if cues:
            self._save_state()  # before the speaker starts, so a crash never replays them
            for cue in cues:
                self.playout.submit(cue)
        self._warn_missing_audio()

    def _warn_missing_audio(self) -> None:
        """Warn once per item whose audio is still not cached a while after it was
        scheduled (or at its time, if that comes first): while someone can still act."""
        now = self.now()
        with self._lock:
            late = [
                i
                for i in self.items.values()
                if i.delivery_id not in self.submitted
                and i.delivery_id not in self.warned
                and (
                    now - self.first_seen.get(i.delivery_id, now) >= self.warn_missing_after
                    or i.scheduled_at <= now
                )
                and not self._ready(i)
            ]
            self.warned.update(i.delivery_id for i in late)
        for i in late:
            log.warning("delivery %s (%s, due %s): its audio is still not cached",
                        i.delivery_id, i.title, i.scheduled_at.isoformat())  # fmt: skip

    def seconds_to_next(self) -> float:
        now = self.now()
        with self._lock:
            waiting = [
                (i.scheduled_at - now).total_seconds()
                for i in self.items.values()
                if i.delivery_id not in self.submitted
            ]
        return max(0.0, min(waiting, default=60.0))

    def _timer_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.play_due()
            except Exception:  # the speaker's clock must outlive any bug
                log.exception("timer step failed; carrying on")
            self._schedule_changed.wait(min(self.seconds_to_next(), 1.0))
            self._schedule_changed.clear()

    def _report_loop(self) -> None:
        pause = REPORT_PAUSE
        while not self._stop.is_set():
            self._outbox_changed.wait(pause)
            self._outbox_changed.clear()
            pause = REPORT_PAUSE
            try:
                self.flush()
            except ServerUnreachable as exc:
                log.warning("reports kept for later: %s", exc)
                pause = REPORT_RETRY  # a restarted server gets them within seconds
            except ServerRefused as exc:
                log.error("server refused this agent's token (%s); stopping", exc)
                self.refused = True
                self.stop()
            except Exception:  # a full disk, or a bug: the reports stay in the outbox
                log.exception("reports kept for later")
                pause = REPORT_RETRY

    # --- lifecycle -----------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if isinstance(self.wakeups, CommandListener):
            self.wakeups.stop()
        self._schedule_changed.set()
        self._outbox_changed.set()

    def run(self) -> int:
        """Run until stopped; returns the process exit code (2: the token was refused)."""
        self.playout.start()
        threads = [
            threading.Thread(target=self._timer_loop, name="agent-timer", daemon=True),
            threading.Thread(target=self._report_loop, name="agent-reports", daemon=True),
        ]
        for t in threads:
            t.start()
        backoff = 1.0
        try:
            while not self._stop.is_set():
                try:
                    if isinstance(self.wakeups, CommandListener) and self.wakeups.connected:
                        # MQTT says when to look: a short poll, then wait for `sync` (or
                        # the next heartbeat); no request is held open meanwhile.
                        self._wake.clear()
                        self.sync_once(0)
                        self._wake.wait(MQTT_HEARTBEAT_SECONDS)
                    else:
                        self.sync_once(self.poll_wait)
                    backoff = 1.0
                    continue
                except ServerRefused as exc:
                    log.error("server refused this agent's token (%s); stopping", exc)
                    self.refused = True
                    break
                except ServerUnreachable as exc:
                    log.warning("server unreachable, playing from cache: %s", exc)
                except Exception:  # a bug must not silence the speaker: play from cache
                    log.exception("sync failed, playing from cache")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 60.0)
        finally:
            self.stop()
            self.playout.close()
            for t in threads:
                t.join(timeout=5)
            if not self.refused:  # a refused token must not turn the outbox into rejections
                try:
                    self.flush()
                except (ServerUnreachable, ServerRefused, OSError) as exc:
                    log.warning("reports kept in the outbox: %s", exc)
            self._save_state()
        return 2 if self.refused else 0

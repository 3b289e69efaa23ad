"""The reference loudspeaker agent.

It long-polls the server for its next hours of schedule, downloads and verifies the
audio ahead of time, plays each item by its own clock (corrected by the server's
time while it can reach it), and keeps its reports in an outbox on disk until the
server accepts them: a commune that loses its link or its power still plays, and
the as-run log learns about it later (store-and-forward).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from audio.playout import Cue, Output, PlayEvent, Playout
from audio.render import atomic_write, file_sha256
from scheduler.clock import Clock, SystemClock

log = logging.getLogger("loa.agent")

POLL_WAIT_SECONDS = 25
HTTP_TIMEOUT_SECONDS = 10
KEEP_PLAYED = timedelta(days=2)


class ServerRefused(Exception):
    """The server rejected the agent's token: retrying cannot help."""


class ServerUnreachable(Exception):
    """No answer, or a server-side error: try again later."""


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
        if response.status_code in (401, 403):
            raise ServerRefused(f"HTTP {response.status_code}: {_detail(response)}")
        if response.status_code >= 500:
            raise ServerUnreachable(f"HTTP {response.status_code}: {_detail(response)}")
        return response

    def schedule(self, version: str | None, wait: float) -> dict[str, Any]:
        params: dict[str, Any] = {"wait": wait} if version else {}
        if version:
            params["version"] = version
        response = self._call(
            "GET", "api/v1/agent/schedule", HTTP_TIMEOUT_SECONDS + wait, params=params
        )
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def download(self, url: str, dest: Path) -> None:
        response = self._call("GET", url, 120, stream=True)
        if response.status_code != 200:
            raise ServerUnreachable(f"audio {url}: HTTP {response.status_code}")
        with dest.open("wb") as fh:
            for chunk in response.iter_content(1 << 16):
                fh.write(chunk)

    def report(self, reports: list[dict[str, Any]]) -> None:
        """Send reports; a 4xx other than auth means they are malformed and are dropped."""
        response = self._call(
            "POST", "api/v1/agent/reports", HTTP_TIMEOUT_SECONDS, json={"reports": reports}
        )
        if response.status_code >= 400:
            log.error("server rejected %d reports: %s", len(reports), _detail(response))


def _detail(response: requests.Response) -> str:
    try:
        data = response.json()
        return f"{data.get('error')}: {data.get('detail')}"
    except ValueError:
        return response.text[:200]


@dataclass(frozen=True)
class Item:
    delivery_id: int
    title: str
    rank: int
    scheduled_at: datetime
    play_until: datetime
    duration_seconds: float
    sha256: str
    audio_url: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Item:
        return cls(
            delivery_id=int(data["delivery_id"]),
            title=str(data.get("title", "")),
            rank=int(data.get("rank", 0)),
            scheduled_at=datetime.fromisoformat(data["scheduled_at"]),
            play_until=datetime.fromisoformat(data["play_until"]),
            duration_seconds=float(data["duration_seconds"]),
            sha256=str(data["sha256"]),
            audio_url=str(data["audio_url"]),
        )

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
        }


class Agent:
    def __init__(
        self,
        client: AgentClient,
        cache_dir: Path,
        output: Output,
        clock: Clock | None = None,
        poll_wait: float = POLL_WAIT_SECONDS,
    ) -> None:
        self.client = client
        self.poll_wait = poll_wait
        self.cache = cache_dir
        self.audio_dir = cache_dir / "audio"
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock or SystemClock()
        self.offset = timedelta(0)  # server time minus our clock, learnt at each poll
        self.items: dict[int, Item] = {}
        self.submitted: set[int] = set()
        self.version: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._schedule_changed = threading.Event()
        self._outbox_changed = threading.Event()
        self.playout = Playout(output, self._on_play_event, self.now, name="agent-playout")
        self._load_state()

    # --- time and state ------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now() + self.offset

    def _load_state(self) -> None:
        state_path = self.cache / "state.json"
        if not state_path.exists():
            return
        state = json.loads(state_path.read_text(encoding="utf-8"))
        self.offset = timedelta(seconds=state.get("offset_seconds", 0.0))
        self.items = {i["delivery_id"]: Item.from_json(i) for i in state.get("items", [])}
        self.submitted = set(state.get("submitted", []))

    def _save_state(self) -> None:
        with self._lock:
            state = {
                "offset_seconds": self.offset.total_seconds(),
                "items": [i.to_json() for i in self.items.values()],
                "submitted": sorted(self.submitted),
            }
        atomic_write(self.cache / "state.json", json.dumps(state).encode("utf-8"))

    def _audio_path(self, item: Item) -> Path:
        return self.audio_dir / f"{item.sha256}.mp3"

    # --- outbox --------------------------------------------------------------------------

    def _queue_report(self, report: dict[str, Any]) -> None:
        with self._lock, (self.cache / "outbox.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(report) + "\n")
        self._outbox_changed.set()

    def flush(self) -> None:
        """Send every queued report; they stay queued if the server cannot be reached."""
        path = self.cache / "outbox.jsonl"
        with self._lock:
            if not path.exists():
                return
            lines = path.read_text(encoding="utf-8").splitlines()
        if not lines:
            return
        self.client.report([json.loads(line) for line in lines])
        with self._lock:
            rest = path.read_text(encoding="utf-8").splitlines()[len(lines) :]
            path.write_text("".join(line + "\n" for line in rest), encoding="utf-8")

    def _on_play_event(self, event: PlayEvent) -> None:
        delivery_id = int(event.key)
        item = self.items.get(delivery_id)
        report: dict[str, Any] = {
            "delivery_id": delivery_id,
            "kind": event.kind,
            "at": event.at.isoformat(),
            "detail": event.detail,
            "clock_offset_seconds": round(self.offset.total_seconds(), 3),
        }
        if event.kind == "finished" and item is not None:
            report["sha256"] = file_sha256(self._audio_path(item))
        log.info(
            "delivery %s %s%s", delivery_id, event.kind, f": {event.detail}" if event.detail else ""
        )
        self._queue_report(report)

    # --- sync ----------------------------------------------------------------------------

    def sync_once(self, wait: float) -> None:
        """One poll: learn the time, take the schedule, fetch missing audio."""
        data = self.client.schedule(self.version, wait)
        received = self.clock.now()
        server_time = datetime.fromisoformat(data["server_time"])
        self.offset = server_time - received
        fresh = {i.delivery_id: i for i in map(Item.from_json, data["items"])}
        for item in fresh.values():
            self._fetch(item)
        recent = self.now() - KEEP_PLAYED
        with self._lock:
            # Remember what was handed to the speaker (so it never plays twice) for a while;
            # anything else the server no longer lists was cancelled.
            self.items = {
                k: v
                for k, v in self.items.items()
                if k in self.submitted and v.scheduled_at > recent
            }
            self.items.update(fresh)
            self.submitted &= set(self.items)
            self.version = data["version"]
        self._save_state()
        self._schedule_changed.set()

    def _fetch(self, item: Item) -> None:
        path = self._audio_path(item)
        if path.exists():
            return
        fd, tmp_name = tempfile.mkstemp(dir=self.audio_dir, prefix=".tmp-")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            self.client.download(item.audio_url, tmp)
            actual = file_sha256(tmp)
            if actual != item.sha256:
                log.error(
                    "audio for delivery %s failed its checksum; retrying later", item.delivery_id
                )
                return
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("delivery %s cached: %s", item.delivery_id, item.title)
        self._queue_report(
            {"delivery_id": item.delivery_id, "kind": "delivered", "at": self.now().isoformat()}
        )

    # --- timing --------------------------------------------------------------------------

    def due_cues(self) -> list[Cue]:
        """Items whose time has come, as cues; each is handed over once."""
        now = self.now()
        cues = []
        with self._lock:
            for item in sorted(self.items.values(), key=lambda i: (i.scheduled_at, -i.rank)):
                if item.delivery_id in self.submitted or item.scheduled_at > now:
                    continue
                path = self._audio_path(item)
                if not path.exists():
                    continue  # maybe it arrives before play_until
                self.submitted.add(item.delivery_id)
                cues.append(
                    Cue(
                        key=str(item.delivery_id),
                        path=path,
                        duration_seconds=item.duration_seconds,
                        rank=item.rank,
                        due_at=item.scheduled_at,
                        play_until=item.play_until,
                        label=item.title,
                    )
                )
        return cues

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
            cues = self.due_cues()
            for cue in cues:
                self.playout.submit(cue)
            if cues:
                self._save_state()
            self._schedule_changed.wait(min(self.seconds_to_next(), 1.0))
            self._schedule_changed.clear()

    def _report_loop(self) -> None:
        while not self._stop.is_set():
            self._outbox_changed.wait(10)
            self._outbox_changed.clear()
            try:
                self.flush()
            except ServerUnreachable as exc:
                log.warning("reports kept for later: %s", exc)
                self._stop.wait(5)
            except ServerRefused as exc:
                log.error("server refused this agent's token (%s)", exc)
                self.stop()

    # --- lifecycle -----------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
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
        code = 0
        backoff = 1.0
        try:
            while not self._stop.is_set():
                try:
                    self.sync_once(self.poll_wait)
                    backoff = 1.0
                except ServerRefused as exc:
                    log.error("server refused this agent's token (%s); stopping", exc)
                    code = 2
                    break
                except (ServerUnreachable, requests.HTTPError, KeyError, ValueError) as exc:
                    log.warning("server unreachable, playing from cache: %s", exc)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 60.0)
        finally:
            self.stop()
            self.playout.close()
            for t in threads:
                t.join(timeout=5)
            try:
                self.flush()
            except (ServerUnreachable, ServerRefused) as exc:
                log.warning("reports kept in the outbox: %s", exc)
            self._save_state()
        return code

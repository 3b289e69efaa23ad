"""Many emulated loudspeaker agents against one real `loa serve`: panel, wake-up, reports.

    .venv/bin/python scripts/bench/agents.py [--agents 1000] [--src DIR]

Starts `loa serve --demo` (no virtual speakers, LOA_TTS_ENGINE=espeak) on a free
loopback port with a fresh LOA_DATA, registers N agent endpoints spread over the 34 demo
communes through the API, and schedules a day's programme from two hours ahead: --items
broadcasts in every commune, so every agent holds --items deliveries (1000 agents × 10
items: the 10,000 reports of the goal). Then, in one asyncio process with hand-written
HTTP/1.1 (no dependency beyond psutil), phase by phase:

1. panel, no agents: the demo user trungtam logs in through the form (CSRF included)
   and GETs /, /endpoints and /log in turn for --panel-seconds, each page on a fresh
   connection as a browser opening the panel would; a page that takes longer than
   --page-timeout counts as a failure, i.e. as infinitely slow in the percentiles.
2. agents connect: each agent opens one keep-alive connection, fetches its schedule,
   then long-polls GET /api/v1/agent/schedule?version=V&wait=25 on it for ever, as the
   reference agent does (timeout wait + 10 s; after an error it reconnects after 1 s,
   then 2, 4, … up to 60 s, with jitter).
   Its first long-poll waits a random 1–25 s, so that the fleet re-polls at scattered
   moments as a fleet running for a while does, not in bursts (--rate is a restart).
3. idle: the agents only long-poll, for --idle-seconds (default: more than one wait, so
   every agent re-polls at least once): the server's CPU for idle agents.
4. panel with agents: the same page loop as 1, while the agents stay connected; the
   ratio of the two p95 is the figure (goal: at most 1.2).
5. wake-up: a bulletin is written, approved and rendered (not timed), then POST
   /api/v1/broadcasts for all 34 communes at now + --ahead; for each agent, the time
   from the POST's answer (and from just before the POST) to the long-poll answer that
   holds the new item; agents that did not see it within --wake-timeout are counted
   (goal: every agent within 1 s).
6. reports: another bulletin is scheduled the same way; an agent that sees it sends a
   `delivered` report for each of its preloaded items, --batch per POST
   /api/v1/agent/reports, on its one connection, then long-polls again (as an agent
   reports after a sync). Total time, requests/s and reports/s (goal: 10,000 reports
   in at most 10 s, i.e. 1,000 reports/s from just before the POST).

Server CPU (user + sys, its children included) and RSS (psutil) are measured per phase,
with this process's own CPU beside them (it shares the machine). The bench bounds
itself: every request has a timeout, every phase a deadline, and --max-seconds stops the
whole run; the server is stopped and the data directory removed at the end (--keep
keeps it, with the server's log). --src runs the server from another checkout of Loa
(e.g. `git archive HEAD | tar -x -C /tmp/loa-before`), with this venv.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psutil
from machine import describe

ROOT = Path(__file__).resolve().parents[2]
LOA = Path(sys.executable).with_name("loa")
HOST = "127.0.0.1"
SCHEDULE = "/api/v1/agent/schedule"
REPORTS = "/api/v1/agent/reports"
PAGES = ("/", "/endpoints", "/log")
PANEL_USER, PANEL_PASSWORD = "trungtam", "loa-trungtam"
HTTP_TIMEOUT = 10.0  # the reference agent's timeout on top of the long-poll's wait
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0  # the reference agent's: doubled after each failure
LOAD_PREFIX = "Bench load"
TEXT = "UBND xã thông báo lịch tiếp công dân từ 7h30 đến 11h ngày 29/12/2026."


class BenchError(Exception):
    """The bench cannot go on (the server refused the setup, or did not start)."""


class HttpError(Exception):
    """The server broke the HTTP exchange (closed early, garbled answer)."""


# --- HTTP/1.1 over asyncio streams ---------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    cookies: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Connection:
    """One HTTP/1.1 keep-alive connection, one request at a time (no pipelining)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        timeout: float = 30.0,
    ) -> Answer:
        """Send one request and read its whole answer within `timeout` (else TimeoutError)."""
        try:
            async with asyncio.timeout(timeout):
                return await self._exchange(method, target, headers or {}, body)
        except BaseException:
            self.close()  # a half-read answer leaves the connection unusable
            raise

    async def _exchange(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> Answer:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for attempt in (1, 2):
            reused = self.writer is not None
            if not reused:
                self.reader, self.writer = await asyncio.open_connection(
                    HOST, self.port, limit=1 << 20
                )
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(data)
                await self.writer.drain()
                head = await self.reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                partial = getattr(exc, "partial", b"")
                if reused and not partial and attempt == 1:
                    continue  # the server had closed the idle connection: open a new one
                raise HttpError("the connection closed before an answer") from exc
            return await self._read_answer(method, head)
        raise AssertionError("unreachable")

    async def _read_answer(self, method: str, head: bytes) -> Answer:
        assert self.reader is not None
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        try:
            version, code = status_line.split(" ", 2)[:2]
            status = int(code)
        except ValueError:
            raise HttpError(f"not an HTTP answer: {status_line[:80]!r}") from None
        headers: dict[str, str] = {}
        cookies: dict[str, str] = {}
        for line in header_lines:
            if not line:
                continue
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookie, _, rest = value.partition("=")
                cookies[cookie.strip()] = rest.split(";", 1)[0]
            else:
                headers[name] = value
        keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        if method == "HEAD" or status in (204, 304) or status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._chunked()
        elif "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        else:
            body, keep = await self.reader.read(), False
        if not keep:
            self.close()
        return Answer(status, headers, cookies, body)

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while await self.reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


NETWORK_ERRORS = (OSError, HttpError, asyncio.IncompleteReadError, asyncio.LimitOverrunError)


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, HttpError | asyncio.IncompleteReadError):
        return "closed"
    return type(exc).__name__


class Api:
    """The JSON API with the bench's admin token, over one keep-alive connection."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = Connection(port)
        self.token = token

    async def call(
        self, method: str, path: str, payload: Any = None, want: int = 200, timeout: float = 60
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        body = b""
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload).encode()
        answer = await self.conn.request(method, path, headers, body, timeout)
        if answer.status != want:
            raise BenchError(f"{method} {path}: HTTP {answer.status} {answer.text[:300]}")
        return answer.json()

    async def ready_bulletin(self, title: str) -> int:
        """A new bulletin, approved and rendered, ready to schedule at once."""
        made = await self.call("POST", "/api/v1/bulletins", {"title": title, "text": TEXT}, 201)
        await self.call("POST", f"/api/v1/bulletins/{made['id']}/approve")
        await self.call("POST", f"/api/v1/bulletins/{made['id']}/audio", timeout=120)
        return int(made["id"])

    async def schedule(self, bulletin_id: int, communes: list[str], at: datetime) -> list[Any]:
        payload = {"bulletin_id": bulletin_id, "communes": communes, "at": at.isoformat()}
        made: list[Any] = await self.call("POST", "/api/v1/broadcasts", payload, 201, 180)
        return made


# --- the panel -----------------------------------------------------------------------------


class Panel:
    """A logged-in panel user; each page is fetched on a fresh connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def _headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    async def login(self, timeout: float) -> None:
        conn = Connection(self.port)
        try:
            form = await conn.request("GET", "/login", timeout=timeout)
            self.cookies.update(form.cookies)
            found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            if form.status != 200 or found is None:
                raise BenchError(f"GET /login: HTTP {form.status}, no CSRF field")
            fields = {
                "csrf_token": found.group(1),
                "username": PANEL_USER,
                "password": PANEL_PASSWORD,
            }
            headers = {**self._headers(), "Content-Type": "application/x-www-form-urlencoded"}
            done = await conn.request(
                "POST", "/login", headers, urlencode(fields).encode(), timeout
            )
        finally:
            conn.close()
        if done.status != 302 or "/login" in done.headers.get("location", ""):
            raise BenchError(f"logging in as {PANEL_USER} failed: HTTP {done.status}")
        self.cookies.update(done.cookies)

    async def get(self, path: str, timeout: float) -> float:
        conn = Connection(self.port)
        started = time.perf_counter()
        try:
            answer = await conn.request("GET", path, self._headers(), timeout=timeout)
        finally:
            conn.close()
        took = time.perf_counter() - started
        self.cookies.update(answer.cookies)
        if answer.status != 200:
            raise HttpError(f"GET {path}: HTTP {answer.status}")
        return took


@dataclass
class PanelRun:
    times: list[float] = field(default_factory=list)  # inf: failed
    by_page: dict[str, list[float]] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)


async def measure_panel(panel: Panel, seconds: float, timeout: float, pause: float) -> PanelRun:
    run = PanelRun(by_page={page: [] for page in PAGES})
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        page = PAGES[n % len(PAGES)]
        n += 1
        try:
            took = await panel.get(page, timeout)
        except NETWORK_ERRORS as exc:
            took = math.inf
            run.failures[error_kind(exc)] += 1
        run.times.append(took)
        run.by_page[page].append(took)
        await asyncio.sleep(pause)
    return run


# --- agents --------------------------------------------------------------------------------


@dataclass(eq=False)
class Agent:
    endpoint_id: int
    token: str
    version: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    polling: bool = False  # a long-poll (with a version) is on the wire
    answers: int = 0
    seen: dict[str, float] = field(default_factory=dict)  # watched title -> answer time
    reported: bool = False
    reports_done: float | None = None
    backoff: float = BACKOFF_FIRST

    async def back_off(self) -> None:
        """Wait after a failure as the reference agent does (with jitter), then double it."""
        await asyncio.sleep(self.backoff * (0.5 + random.random()))
        self.backoff = min(2 * self.backoff, BACKOFF_MAX)


@dataclass
class ReportStats:
    expected: int = 0
    received: int = 0
    changed: int = 0
    requests: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    first_sent: float = math.inf
    last_answer: float = 0.0


class Fleet:
    """N agents, each one task with one keep-alive connection."""

    def __init__(self, port: int, agents: list[Agent], wait: float, batch: int) -> None:
        self.port = port
        self.agents = agents
        self.wait = wait
        self.batch = batch
        self.watch: set[str] = set()
        self.report_title: str | None = None
        self.report_deadline = math.inf
        self.reports = ReportStats()
        self.errors: Counter[str] = Counter()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, rate: float) -> None:
        """Start the agents at `rate` per second, as a fleet reconnecting after a restart."""
        step = max(1, int(rate / 20))
        for i, agent in enumerate(self.agents):
            self.tasks.append(asyncio.create_task(self._run(agent)))
            if (i + 1) % step == 0:
                await asyncio.sleep(step / rate)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def polling(self) -> int:
        return sum(1 for a in self.agents if a.polling)

    async def _run(self, agent: Agent) -> None:
        conn = Connection(self.port)
        headers = {"Authorization": f"Bearer {agent.token}", "User-Agent": "loa-bench-agent"}
        try:
            while True:
                if agent.version is None:
                    target, timeout = SCHEDULE, HTTP_TIMEOUT
                else:
                    # The first wait is drawn at random: a fleet that has run for a while
                    # re-polls at scattered moments, not in the burst of a common start.
                    wait = self.wait if agent.answers > 1 else random.uniform(1, self.wait)
                    target = f"{SCHEDULE}?version={quote(agent.version)}&wait={wait:.1f}"
                    timeout = wait + HTTP_TIMEOUT
                agent.polling = agent.version is not None
                try:
                    answer = await conn.request("GET", target, headers, timeout=timeout)
                except NETWORK_ERRORS as exc:
                    agent.polling = False
                    self.errors[error_kind(exc)] += 1
                    await agent.back_off()
                    continue
                agent.polling = False
                arrived = time.perf_counter()
                if answer.status != 200:
                    self.errors[f"HTTP {answer.status}"] += 1
                    await agent.back_off()
                    continue
                try:
                    data = answer.json()
                    agent.version, agent.items = data["version"], data["items"]
                except (ValueError, KeyError, TypeError):
                    self.errors["bad answer"] += 1
                    await agent.back_off()
                    continue
                agent.answers += 1
                agent.backoff = BACKOFF_FIRST
                for item in agent.items:
                    title = item["title"]
                    if title in self.watch and title not in agent.seen:
                        agent.seen[title] = arrived
                if self.report_title in agent.seen and not agent.reported:
                    await self._report(agent, conn, headers)
        finally:
            conn.close()

    async def _report(self, agent: Agent, conn: Connection, headers: dict[str, str]) -> None:
        """`delivered` for each preloaded item, --batch per request, retried until accepted."""
        agent.reported = True
        stats = self.reports
        ids = [i["delivery_id"] for i in agent.items if i["title"].startswith(LOAD_PREFIX)]
        at = datetime.now(UTC).isoformat()
        post = {**headers, "Content-Type": "application/json"}
        for k in range(0, len(ids), self.batch):
            reports = [
                {"delivery_id": d, "kind": "delivered", "at": at} for d in ids[k : k + self.batch]
            ]
            body = json.dumps({"reports": reports}).encode()
            while time.perf_counter() < self.report_deadline:
                sent = time.perf_counter()
                stats.first_sent = min(stats.first_sent, sent)
                try:
                    answer = await conn.request("POST", REPORTS, post, body, HTTP_TIMEOUT)
                except NETWORK_ERRORS as exc:
                    stats.failures[error_kind(exc)] += 1
                    await agent.back_off()
                    continue
                if answer.status != 200:
                    stats.failures[f"HTTP {answer.status}"] += 1
                    if answer.status < 500:
                        break  # refused: resending the same batch cannot help
                    await agent.back_off()
                    continue
                done = time.perf_counter()
                try:
                    data = answer.json()
                    stats.received += int(data["received"])
                    stats.changed += int(data["changed"])
                except (ValueError, KeyError, TypeError):
                    stats.failures["bad answer"] += 1
                    break
                stats.requests += 1
                stats.latencies.append(done - sent)
                stats.last_answer = max(stats.last_answer, done)
                agent.backoff = BACKOFF_FIRST
                break
        agent.reports_done = time.perf_counter()


# --- the server and its cost ---------------------------------------------------------------


class Meter:
    """Server CPU (user + sys, children included) and RSS per phase; this process's CPU."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.rows: list[tuple[str, float, float, int, int, float]] = []

    def sample(self) -> tuple[float, int]:
        cpu, rss = 0.0, 0
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return 0.0, 0
        for p in procs:
            try:
                t = p.cpu_times()
                cpu += t.user + t.system + t.children_user + t.children_system
                rss += p.memory_info().rss
            except psutil.Error:
                continue
        self.peak = max(self.peak, rss)
        return cpu, rss

    async def watch(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.25)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        cpu0, self.peak = self.sample()
        wall0, own0 = time.perf_counter(), own_cpu()
        try:
            yield
        finally:
            cpu1, rss = self.sample()
            wall = time.perf_counter() - wall0
            self.rows.append((name, wall, cpu1 - cpu0, rss, self.peak, own_cpu() - own0))


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def raise_fd_limit(agents: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * agents + 512  # the server (a child: it inherits the limit) needs as many
    if soft < need:
        soft = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


async def wait_ready(port: int, server: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if server.poll() is not None:
            raise BenchError(f"loa serve exited with code {server.returncode}")
        conn = Connection(port)
        try:
            answer = await conn.request("GET", "/api/v1/openapi.json", timeout=2)
            if answer.status == 200:
                return
        except NETWORK_ERRORS:
            pass
        finally:
            conn.close()
        await asyncio.sleep(0.2)
    raise BenchError(f"loa serve did not answer within {seconds:.0f} s")


# --- figures -------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile; failures are inf and count as the slowest."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def secs(value: float) -> str:
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "failed"
    if abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:.0f}" if math.isfinite(seconds) and seconds > 0 else "—"


def counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.most_common()) or "none"


@dataclass
class Results:
    setup: list[str] = field(default_factory=list)
    panel: dict[str, PanelRun] = field(default_factory=dict)
    connect: str = ""
    wake: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    due: float = math.inf  # when the wake-up broadcasts fall due (perf_counter)


def panel_lines(results: Results, agents: int) -> list[str]:
    out = [
        f"panel: GET {', '.join(PAGES)} in turn as {PANEL_USER}, a fresh connection per page",
        f"  {'':<22}{'pages':>6}{'failed':>8}{'p50':>10}{'p95':>10}{'p99':>10}"
        "   by page: p50 / p95",
    ]
    for name, run in results.panel.items():
        by_page = "  ".join(
            f"{p} {secs(pct(t, 50))} / {secs(pct(t, 95))}" for p, t in run.by_page.items()
        )
        out.append(
            f"  {name:<22}{len(run.times):>6}{sum(run.failures.values()):>8}"
            f"{secs(pct(run.times, 50)):>10}{secs(pct(run.times, 95)):>10}"
            f"{secs(pct(run.times, 99)):>10}   {by_page}"
        )
        if run.failures:
            out.append(f"  {'':<22}failures: {counts(run.failures)}")
    runs = list(results.panel.values())
    if len(runs) == 2:
        ratios = [pct(runs[1].times, p) / pct(runs[0].times, p) for p in (95, 50)]
        p95, p50 = ("inf" if math.isinf(r) else f"{r:.2f}" for r in ratios)
        verdict = "met" if ratios[0] <= 1.2 else "NOT met"
        out.append(
            f"  with {agents} agents / without: p95 {p95} (goal <= 1.20: {verdict}), p50 {p50}"
        )
    return out


def usage_lines(meter: Meter) -> list[str]:
    out = [
        "server CPU (user+sys, s) and RSS by phase; bench = this emulator's own CPU",
        f"  {'phase':<22}{'wall s':>8}{'cpu s':>8}{'cpu/wall':>9}{'RSS MiB':>9}"
        f"{'peak MiB':>9}{'bench s':>9}",
    ]
    for name, wall, cpu, rss, peak, own in meter.rows:
        out.append(
            f"  {name:<22}{wall:>8.1f}{cpu:>8.1f}{cpu / wall if wall else 0:>9.2f}"
            f"{rss / 2**20:>9.0f}{peak / 2**20:>9.0f}{own:>9.1f}"
        )
    return out


# --- the run -------------------------------------------------------------------------------


async def bench(
    args: argparse.Namespace, work: Path, results: Results, meter_box: list[Meter]
) -> None:
    port = args.port or free_port()
    env = {
        **os.environ,
        "LOA_DATA": str(work / "var"),
        "LOA_TTS_ENGINE": "espeak",
        "PYTHONUNBUFFERED": "1",
    }
    src = Path(args.src).resolve()
    if src != ROOT:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    log_path = work / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(LOA), "serve", "--demo", "--host", HOST, "--port", str(port)],
            env=env,
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    results.notes.append(f"server pid {server.pid}")
    try:
        await run_phases(args, env, port, server, results, meter_box)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        text = log_path.read_text("utf-8", "replace")
        marks = {
            "Traceback": text.count("Traceback"),
            "database is locked": text.count("database is locked"),
            "QueuePool limit": text.count("QueuePool limit"),
        }
        results.notes.append("server log: " + ", ".join(f"{k} {v}" for k, v in marks.items()))
        # The most frequent warnings and errors, numbers folded, so a storm shows its cause.
        found = re.findall(r"^\S+ \S+ (?:WARNING|ERROR|CRITICAL) (.*)$", text, re.MULTILINE)
        kinds = Counter(re.sub(r"\d+", "N", line)[:160] for line in found)
        for line, times in kinds.most_common(4):
            results.notes.append(f"  {times} × {line}")


async def run_phases(
    args: argparse.Namespace,
    env: dict[str, str],
    port: int,
    server: subprocess.Popen[bytes],
    results: Results,
    meter_box: list[Meter],
) -> None:
    n = args.agents
    meter = Meter(server.pid)
    meter_box.append(meter)
    watcher = asyncio.create_task(meter.watch())
    with meter.phase("setup"):
        started = time.perf_counter()
        await wait_ready(port, server, 90)
        results.setup.append(f"server up in {time.perf_counter() - started:.1f} s")
        made = subprocess.run(
            [str(LOA), "token", "create", "--name", "bench", "--role", "admin"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if made.returncode != 0:
            raise BenchError(f"loa token create: {made.stderr.strip()}")
        api = Api(port, made.stdout.strip())
        communes = [c["code"] for c in await api.call("GET", "/api/v1/communes")]

        started = time.perf_counter()
        agents: list[Agent] = []

        async def register(worker: int) -> None:
            conn = Api(port, api.token)
            try:
                for i in range(worker, n, 8):
                    body = {"commune": communes[i % len(communes)], "name": f"bench-{i:05d}"}
                    ep = await conn.call(
                        "POST", "/api/v1/endpoints", {**body, "kind": "agent"}, 201
                    )
                    agents.append(Agent(ep["id"], ep["token"]))
            finally:
                conn.conn.close()

        await asyncio.gather(*(register(w) for w in range(8)))
        results.setup.append(
            f"{n} agent endpoints over {len(communes)} communes in "
            f"{time.perf_counter() - started:.1f} s"
        )

        per_agent = args.items
        started = time.perf_counter()
        stamp = f"{datetime.now(UTC):%H%M%S}"
        load_id = await api.ready_bulletin(f"{LOAD_PREFIX} {stamp}")
        first = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
        for k in range(per_agent):
            await api.schedule(load_id, communes, first + timedelta(minutes=10 * k))
        results.setup.append(
            f"{per_agent} broadcasts per commune ({per_agent * len(communes)} in all, "
            f"{per_agent} items per agent) in {time.perf_counter() - started:.1f} s"
        )
        # The bulletins of the wake-up and the reports, rendered now: those phases time
        # scheduling and delivery, not speech synthesis.
        ready = {}
        for name in ("wake-up", "reports"):
            title = f"Bench {name} {stamp}"
            ready[name] = (title, await api.ready_bulletin(title))
        panel = Panel(port)
        await panel.login(args.page_timeout)

    with meter.phase("panel, no agents"):
        results.panel["no agents"] = await measure_panel(
            panel, args.panel_seconds, args.page_timeout, args.pause
        )

    fleet = Fleet(port, agents, args.wait, args.batch)
    try:
        with meter.phase("agents connect"):
            started = time.perf_counter()
            await fleet.start(args.rate)
            deadline = started + args.settle
            while fleet.polling() < n and time.perf_counter() < deadline:
                await asyncio.sleep(0.1)
            took = time.perf_counter() - started
        results.connect = (
            f"agents: {fleet.polling()}/{n} long-polling {took:.1f} s after the first connected "
            f"(started at {args.rate:g}/s, bound {args.settle:g} s)"
        )

        with meter.phase(f"idle, {n} agents"):
            answers = sum(a.answers for a in agents)
            await asyncio.sleep(args.idle_seconds)
            idle_answers = sum(a.answers for a in agents) - answers
        results.connect += (
            f"; {idle_answers} poll answers in {args.idle_seconds:g} s idle"
            f" ({idle_answers / args.idle_seconds:.1f}/s)"
        )

        with meter.phase(f"panel, {n} agents"):
            results.panel[f"{n} agents idle"] = await measure_panel(
                panel, args.panel_seconds, args.page_timeout, args.pause
            )
        results.connect += f"; {fleet.polling()}/{n} long-polling after the panel phase"

        with meter.phase("wake-up"):
            await wake_up(args, api, fleet, communes, results, ready["wake-up"])

        with meter.phase("reports"):
            await ingest(args, api, fleet, communes, results, ready["reports"], per_agent)
        results.connect += f"; agent errors over the run: {counts(fleet.errors)}"
        if time.perf_counter() > results.due:
            results.reports.append(
                "  note: the wake-up broadcasts fell due during this phase; the dispatcher "
                "then woke every agent again and logged each undelivered item"
            )
    finally:
        await fleet.stop()
        watcher.cancel()
        api.conn.close()


async def post_broadcasts(
    api: Api, bulletin_id: int, communes: list[str], ahead: float
) -> tuple[float, str]:
    """Schedule the bulletin everywhere at now + `ahead`; (when it ended, how it ended)."""
    try:
        await api.schedule(bulletin_id, communes, datetime.now(UTC) + timedelta(seconds=ahead))
        outcome = "answered"
    except BenchError as exc:
        outcome = f"FAILED ({exc})"
    except NETWORK_ERRORS as exc:
        outcome = f"FAILED ({error_kind(exc)})"
    return time.perf_counter(), outcome


async def wake_up(
    args: argparse.Namespace,
    api: Api,
    fleet: Fleet,
    communes: list[str],
    results: Results,
    ready: tuple[str, int],
) -> None:
    title, bulletin_id = ready
    polling = fleet.polling()
    fleet.watch.add(title)
    before = time.perf_counter()
    answered, outcome = await post_broadcasts(api, bulletin_id, communes, args.ahead)
    results.due = before + args.ahead
    deadline = answered + args.wake_timeout
    agents = fleet.agents
    while time.perf_counter() < deadline and any(title not in a.seen for a in agents):
        await asyncio.sleep(0.02)
    seen = [a.seen[title] for a in agents if title in a.seen and a.seen[title] <= deadline]
    missed = len(agents) - len(seen)
    results.wake.append(
        f"wake-up: POST /broadcasts ({len(communes)} communes, at now + {args.ahead:g} s) "
        f"{outcome} in {secs(answered - before)}; {polling}/{len(agents)} agents were long-polling"
    )
    results.wake.append(
        f"  {'':<22}{'p50':>10}{'p99':>10}{'max':>10}   never saw it in {args.wake_timeout:g} s"
    )
    for name, origin in (("from the POST's answer", answered), ("from before the POST", before)):
        lat = [t - origin for t in seen] + [math.inf] * missed
        results.wake.append(
            f"  {name:<22}{secs(pct(lat, 50)):>10}{secs(pct(lat, 99)):>10}"
            f"{secs(max(lat) if lat else math.nan):>10}   {missed}"
        )
    prompt = sum(1 for t in seen if t - answered <= 1.0)
    strict = sum(1 for t in seen if t - before <= 1.0)
    verdict = "met" if prompt == len(agents) else "NOT met"
    results.wake.append(
        f"  woken within 1 s: {prompt}/{len(agents)} of the answer (goal: all; {verdict}), "
        f"{strict}/{len(agents)} of before the POST"
    )


async def ingest(
    args: argparse.Namespace,
    api: Api,
    fleet: Fleet,
    communes: list[str],
    results: Results,
    ready: tuple[str, int],
    per_agent: int,
) -> None:
    title, bulletin_id = ready
    stats = fleet.reports
    stats.expected = len(fleet.agents) * per_agent  # the deliveries made in the setup
    fleet.watch.add(title)
    fleet.report_title = title
    before = time.perf_counter()
    fleet.report_deadline = before + args.reports_timeout
    answered, outcome = await post_broadcasts(api, bulletin_id, communes, args.ahead)
    agents = fleet.agents
    while time.perf_counter() < fleet.report_deadline and any(
        a.reports_done is None for a in agents
    ):
        await asyncio.sleep(0.05)
    never = sum(1 for a in agents if not a.reported)
    unfinished = sum(1 for a in agents if a.reported and a.reports_done is None)
    span = stats.last_answer - stats.first_sent if stats.requests else math.nan
    total = stats.last_answer - before if stats.requests else math.nan
    results.reports += [
        f"reports: {stats.expected} `delivered` reports held by the agents "
        f"({per_agent} per agent, {args.batch} per request), sent once an agent sees a new "
        f"item (POST /broadcasts {outcome} in {secs(answered - before)})",
        f"  accepted {stats.received} ({stats.changed} changed a status) in {stats.requests} "
        f"requests; failed requests: {counts(stats.failures)}",
        f"  first report sent -> last answer: {secs(span)}  = "
        f"{rate(stats.requests, span)} requests/s, {rate(stats.received, span)} reports/s",
        f"  from before the POST /broadcasts: {secs(total)}; per request "
        f"p50 {secs(pct(stats.latencies, 50))}, p99 {secs(pct(stats.latencies, 99))}, "
        f"max {secs(max(stats.latencies, default=math.nan))}",
        f"  agents that never saw the item: {never}; still sending at the "
        f"{args.reports_timeout:g} s bound: {unfinished}",
    ]
    ok = stats.changed >= stats.expected and stats.expected / total >= 1000
    results.reports.append(
        f"  goal: all {stats.expected} in, at 1,000 reports/s or more from before the POST "
        f"(10,000 in 10 s): {'met' if ok else 'NOT met'}"
    )


def summary(args: argparse.Namespace, results: Results, meters: list[Meter]) -> str:
    src = Path(args.src).resolve()
    lines = [
        f"== Loa: {args.agents} emulated agents against one `loa serve` ==",
        f"machine: {describe()}",
        f"server: {LOA} serve --demo (code from {src}), LOA_TTS_ENGINE=espeak, "
        f"long-poll wait={args.wait:g}",
        "setup: " + "; ".join(results.setup),
        "",
    ]
    if results.panel:
        lines += [*panel_lines(results, args.agents), ""]
    if results.connect:
        lines += [results.connect, ""]
    if results.wake:
        lines += [*results.wake, ""]
    if results.reports:
        lines += [*results.reports, ""]
    if meters:
        lines += [*usage_lines(meters[0]), ""]
    lines += results.notes
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument(
        "--items", type=int, default=10, help="broadcasts per commune = items and reports per agent"
    )
    parser.add_argument("--batch", type=int, default=10, help="reports per POST")
    parser.add_argument("--wait", type=float, default=25, help="long-poll wait (s)")
    parser.add_argument("--rate", type=float, default=200, help="agents started per second")
    parser.add_argument("--settle", type=float, default=40, help="bound for all to poll (s)")
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--panel-seconds", type=float, default=60)
    parser.add_argument("--page-timeout", type=float, default=10)
    parser.add_argument("--pause", type=float, default=0.1, help="between panel pages (s)")
    parser.add_argument("--ahead", type=float, default=60, help="broadcasts at now + S")
    parser.add_argument("--wake-timeout", type=float, default=10)
    parser.add_argument("--reports-timeout", type=float, default=60)
    parser.add_argument("--max-seconds", type=float, default=900, help="bound on the run")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--src", default=str(ROOT), help="the Loa checkout to serve")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and log")
    args = parser.parse_args()
    if args.agents < 1 or not 1 <= args.items <= 250 or not 1 <= args.batch <= 1000:
        parser.error("--agents must be positive, --items within 1..250, --batch 1..1000")
    limit = raise_fd_limit(args.agents)
    work = Path(tempfile.mkdtemp(prefix="loa-bench-agents-"))
    results = Results(notes=[f"open files limit {limit}"])
    meters: list[Meter] = []
    code = 0
    try:
        asyncio.run(asyncio.wait_for(bench(args, work, results, meters), args.max_seconds))
    except TimeoutError:
        results.notes.append(
            f"STOPPED: the run took longer than --max-seconds {args.max_seconds:g}"
        )
        code = 1
    except BenchError as exc:
        results.notes.append(f"FAILED: {exc}")
        code = 1
    except KeyboardInterrupt:
        results.notes.append("INTERRUPTED")
        code = 130
    print(summary(args, results, meters))
    if args.keep or code:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

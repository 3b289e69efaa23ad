"""A province's year: the dashboard, the as-run log page and the year's exports.

    .venv/bin/python scripts/bench/reports.py [--requests 50] [--src DIR] [--keep DIR]
                                              [--exports-only | --pages-only]

A fresh SQLite database with Thanh Hóa's 559 communes (2021 list), one agent endpoint
each, and 2026 in full: two slots a day (06:30, 17:00) in every commune, 408,070
broadcasts with their deliveries and history rows, inserted in bulk (not through the
service). Most played (device or operator confirmed), some missed with reasons, a few
cancelled; the clock stands on 31 December 2026 at 09:00, so today's morning slot has
aired and the afternoon's is ahead. Then, through the Flask test client logged in as the
centre user: the dashboard (`/`), the log's first page and a filtered page (p50 / p95),
the XLSX and DOCX downloads of the year and `sqlite3 -csv` dumping the same rows, in turn
`--rounds` times (medians, and the ratio round by round), then the CSV download once.
Goals (issue 8): dashboard p95 ≤ 150 ms, log p95 ≤ 200 ms, XLSX + DOCX ≤ 3 × the dump.
`--src` runs another checkout (e.g. `git archive` of an older commit) for a "before";
`--exports-only` skips the pages, `--pages-only` the exports.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from machine import describe

ROOT = Path(__file__).resolve().parents[2]
PROVINCE = "38"  # Thanh Hóa: 559 communes
YEAR = 2026
SLOTS = ((6, 30), (17, 0))
NOW = datetime(YEAR, 12, 31, 2, 0, tzinfo=UTC)  # 09:00 in Vietnam
TOPICS = ("CCHC", "Thời sự", "Nông nghiệp", "Y tế")
REASONS = ("Mất điện", "Loa hỏng", "Mưa bão, mất sóng", None)  # None: the device's error
DUMP_SQL = """SELECT b.id, a.code, a.name, b.bulletin_id, u.title, u.topic, u.kind, b.priority,
 b.scheduled_at, b.status, b.started_at, b.finished_at, s.duration_seconds, b.confirmation,
 b.confirmed_by, b.reason
 FROM broadcasts b JOIN areas a ON a.id = b.commune_id JOIN bulletins u ON u.id = b.bulletin_id
 JOIN audio_assets s ON s.id = b.audio_id
 WHERE b.scheduled_at >= '{start}' AND b.scheduled_at < '{end}'
 ORDER BY b.scheduled_at, a.code, b.id"""


def outcome(rng: random.Random) -> tuple[str, str | None, str | None]:
    """(status, confirmation, reason) of a broadcast that is over."""
    x = rng.random()
    if x < 0.75:
        return "played", "device", None
    if x < 0.92:
        return "played", "operator", None
    if x < 0.99:
        return "missed", "operator", rng.choice(REASONS)
    return "cancelled", None, None


def build(data: Path) -> tuple[int, str]:
    """The province's year in `data`/loa.db; returns (broadcasts, a commune's code)."""
    from sqlalchemy import text

    from scheduler import areas, bulletins, service, users
    from scheduler.auth import Actor
    from scheduler.clock import ManualClock
    from scheduler.context import build_loa
    from scheduler.db import bulk_insert
    from scheduler.models import Broadcast, Endpoint, Priority, Role
    from scheduler.settings import load_settings

    env = {"LOA_DATA": str(data), "LOA_SECRET_KEY": "bench-secret-0123456789abcdef",
           "LOA_TTS_ENGINE": "espeak"}  # fmt: skip
    loa = build_loa(load_settings(env), clock=ManualClock(datetime(YEAR, 1, 1, tzinfo=UTC)))
    centre = Actor("user:trungtam", Role.CENTRE)
    units = [u for u in areas.official_units() if u.province_code == PROVINCE]
    with loa.transaction() as s:
        areas.import_units(s, units)
        users.create_user(s, None, username="trungtam", display_name="Trung tâm",
                          password="loa-trungtam", role="centre", now=loa.now())  # fmt: skip
        users.create_user(s, None, username="thoson", display_name="Đài xã Thọ Sơn",
                          password="loa-thoson", role="operator", communes=[units[0].commune_code],
                          now=loa.now())  # fmt: skip
    with loa.transaction() as s:
        communes = [c.id for c in areas.communes(s)]
        made = [{"commune_id": c, "name": "Cụm 1", "kind": "agent", "active": True,
                 "created_at": loa.now(), "state": "up"} for c in communes]  # fmt: skip
        s.bulk_insert_mappings(Endpoint, made)  # type: ignore[arg-type]
        ids = []
        for topic in TOPICS:
            b = bulletins.create_bulletin(
                s, centre, title=f"Bản tin {topic}", text=f"Xã thông báo tin {topic}.",
                topic=topic, priority=Priority.NORMAL, now=loa.now(), max_chars=20000,
            )  # fmt: skip
            bulletins.approve(s, Actor("user:admin", Role.ADMIN), b, loa.now())
            ids.append(b.id)
    audio = {i: service.render_bulletin(loa, centre, i).id for i in ids}
    tz = loa.settings.timezone
    rng = random.Random(8)
    rows = []
    day = date(YEAR, 1, 1)
    while day.year == YEAR:
        for n, (hour, minute) in enumerate(SLOTS):
            at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)
            bulletin = ids[(day.toordinal() * 2 + n) % len(ids)]
            created = at - timedelta(days=1)
            for c in communes:
                row = {"bulletin_id": bulletin, "commune_id": c, "audio_id": audio[bulletin],
                       "priority": "normal", "scheduled_at": at, "status": "scheduled",
                       "dispatched_at": None, "started_at": None, "finished_at": None,
                       "confirmed_by": None, "confirmed_at": None, "confirmation": None,
                       "reason": None, "created_by": "user:trungtam", "created_at": created,
                       "overflow": False}  # fmt: skip
                if at < NOW:
                    status, how, why = outcome(rng)
                    row.update(status=status, confirmation=how, reason=why)
                    if status == "played":
                        start = at + timedelta(seconds=rng.randint(0, 20))
                        end = start + timedelta(seconds=rng.randint(40, 70))
                        row.update(dispatched_at=at, started_at=start, finished_at=end)
                    if how:
                        row.update(confirmed_at=at + timedelta(minutes=5),
                                   confirmed_by="user:trungtam" if how == "operator"
                                   else "endpoint:Cụm 1")  # fmt: skip
                        if how == "operator" and why is None and status == "missed":
                            row.update(confirmation=None, confirmed_by=None, confirmed_at=None)
                rows.append(row)
        day += timedelta(days=1)
    with loa.transaction() as s:
        bulk_insert(s, Broadcast.__table__, rows)  # type: ignore[arg-type]
        # A delivery each (the device's error where it missed on its own) and the history:
        # scheduled, then the outcome.
        s.execute(text(
            "INSERT INTO deliveries (broadcast_id, endpoint_id, status, delivered_at, started_at,"
            " finished_at, error) SELECT b.id, e.id,"
            " CASE WHEN b.status = 'scheduled' THEN 'delivered' ELSE b.status END,"
            " b.created_at, b.started_at, b.finished_at,"
            " CASE WHEN b.status = 'missed' AND b.reason IS NULL THEN 'no proof of play' END"
            " FROM broadcasts b JOIN endpoints e ON e.commune_id = b.commune_id"
        ))  # fmt: skip
        s.execute(text(
            "INSERT INTO broadcast_events (broadcast_id, at, from_status, to_status, actor)"
            " SELECT id, created_at, NULL, 'scheduled', created_by FROM broadcasts"
        ))  # fmt: skip
        s.execute(text(
            "INSERT INTO broadcast_events (broadcast_id, at, from_status, to_status, actor,"
            " reason) SELECT id, COALESCE(confirmed_at, finished_at, scheduled_at), 'scheduled',"
            " status, COALESCE(confirmed_by, 'dispatcher:'), reason FROM broadcasts"
            " WHERE status != 'scheduled'"
        ))  # fmt: skip
    loa.close()
    return len(rows), units[0].commune_code


def timed(fn: Callable[[], object], n: int, budget: float) -> list[float]:
    """Wall times (ms) of up to `n` calls, stopping once `budget` seconds are spent."""
    out: list[float] = []
    t_end = time.perf_counter() + budget
    while len(out) < n and (not out or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(
    data: Path,
    requests: int,
    budget: float,
    commune: str,
    with_pages: bool = True,
    with_exports: bool = True,
    rounds: int = 3,
) -> None:
    from loa.serve import GC_THRESHOLDS
    from scheduler.clock import ManualClock
    from scheduler.context import build_loa
    from scheduler.models import User
    from scheduler.settings import load_settings
    from web import create_app

    gc.set_threshold(*GC_THRESHOLDS)  # as `loa serve` and `loa web` run
    env = {"LOA_DATA": str(data), "LOA_SECRET_KEY": "bench-secret-0123456789abcdef"}
    loa = build_loa(load_settings(env), clock=ManualClock(NOW))
    app = create_app(loa)
    client = app.test_client()
    with loa.transaction() as s:
        user_id = s.query(User.id).filter(User.username == "trungtam").scalar()
    with client.session_transaction() as session:
        session["user_id"] = user_id

    def get(path: str) -> Callable[[], bytes]:
        def call() -> bytes:
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code)
            return r.data

        return call

    if with_pages:
        print(f"\n{'page':<58} {'n':>3} {'p50 ms':>9} {'p95 ms':>9}")
    pages = [
        ("dashboard /", "/", 150),
        ("log, first page /log", "/log", 200),
        ("log, filtered: missed in H2, page 3", "/log?from=2026-07-01&to=2026-12-31"
         "&status=missed&page=3", 200),
        (f"log, filtered: commune {commune}, June", f"/log?from=2026-06-01&to=2026-06-30"
         f"&commune={commune}", 200),
    ]  # fmt: skip
    for name, path, goal in pages if with_pages else []:
        get(path)()  # warm: templates, caches
        ms = timed(get(path), requests, budget)
        p95 = p(ms, 0.95)
        verdict = "met" if p95 <= goal else "NOT met"
        print(f"{name:<58} {len(ms):>3} {p(ms, 0.5):>9.1f} {p95:>9.1f}  goal ≤ {goal}: {verdict}")
    if with_pages:
        size = len(get("/log")())
        print(f"(the log's first page is {size / 1024:.0f} KiB)")
    if not with_exports:
        loa.close()
        return

    year = f"from={YEAR}-01-01&to={YEAR}-12-31"
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    begin = datetime(YEAR, 1, 1, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
    end = datetime(YEAR + 1, 1, 1, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
    sql = DUMP_SQL.format(start=begin, end=end).replace("\n", " ")

    def download(fmt: str) -> int:
        return len(get(f"/reports/download.{fmt}?{year}")())

    def dump() -> int:
        with open(data / "dump.csv", "wb") as out:
            subprocess.run(["sqlite3", "-csv", "-header", str(data / "loa.db"), sql], stdout=out,
                           check=True)  # fmt: skip
        return (data / "dump.csv").stat().st_size

    # The exports and the dump in turn, `rounds` times: each ratio compares measurements
    # made together (this machine's speed moves from one minute to the next).
    jobs = {"xlsx": lambda: download("xlsx"), "docx": lambda: download("docx"), "dump": dump}
    wall: dict[str, list[float]] = {name: [] for name in jobs}
    cpu: dict[str, list[float]] = {name: [] for name in jobs}
    size: dict[str, int] = {}
    print(f"load average: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for _ in range(rounds):
        for name, job in jobs.items():
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0, c0 = time.perf_counter(), time.process_time()
            size[name] = job()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0 + after.ru_utime + after.ru_stime
                             - children.ru_utime - children.ru_stime)  # fmt: skip
    ratios = [(x + d) / u for x, d, u in zip(wall["xlsx"], wall["docx"], wall["dump"], strict=True)]
    for name in jobs:
        print(f"{name} of the year: median {statistics.median(wall[name]):.2f} s (CPU "
              f"{statistics.median(cpu[name]):.2f} s, all threads), {size[name] / 2**20:.1f} MiB; "
              f"runs {', '.join(f'{x:.2f}' for x in wall[name])}")  # fmt: skip
    t0 = time.perf_counter()
    csv_size = download("csv")
    print(f"csv of the year: {time.perf_counter() - t0:.2f} s, {csv_size / 2**20:.1f} MiB")
    loa.close()
    ratio = statistics.median(ratios)
    print(f"XLSX + DOCX ÷ the dump, round by round: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median {ratio:.2f} ×; goal ≤ 3: {'met' if ratio <= 3 else 'NOT met'}")  # fmt: skip
    median_cpu = {name: statistics.median(times) for name, times in cpu.items()}
    print(f"in CPU time: {(median_cpu['xlsx'] + median_cpu['docx']) / median_cpu['dump']:.2f} "
          f"× the dump; load average now {os.getloadavg()[0]:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="of the exports and the dump")
    parser.add_argument("--budget", type=float, default=120, help="seconds per page at most")
    parser.add_argument("--src", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("--keep", type=Path, help="reuse (or keep) the database in this folder")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--exports-only", action="store_true", help="skip the pages")
    only.add_argument("--pages-only", action="store_true", help="skip the exports")
    args = parser.parse_args()
    sys.path.insert(0, str(args.src.resolve()))
    print(f"machine: {describe()}")
    print(f"code: {args.src.resolve()}")
    with tempfile.TemporaryDirectory() as tmp:
        data = args.keep or Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if (data / "loa.db").exists():
            commune = next(u for u in units_of_province()).commune_code
            print("reusing", data / "loa.db")
        else:
            count, commune = build(data)
            print(f"built {count} broadcasts (559 communes × 365 days × 2 slots), with "
                  f"deliveries and history, in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        measure(data, args.requests, args.budget, commune,
                not args.exports_only, not args.pages_only, args.rounds)  # fmt: skip
        if args.keep is None:
            shutil.rmtree(data / "audio", ignore_errors=True)


def units_of_province() -> list:  # type: ignore[type-arg]
    from scheduler import areas

    return [u for u in areas.official_units() if u.province_code == PROVINCE]


if __name__ == "__main__":
    main()

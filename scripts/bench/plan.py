"""The country's week: materialise, an idle scheduler, and one slot start for every commune.

    .venv/bin/python scripts/bench/plan.py [--days 7] [--backend sqlite|postgresql|both]
                                           [--idle-seconds 60]

For each backend, on a fresh database (PostgreSQL: a throwaway server started here, as
the tests do), with the 10,599 communes of the 2021 list and one agent endpoint each:

1. materialise: one placement of a rendered bulletin into both daily slots for all
   communes for --days days (7 × 2 × 10,599 ≈ 148,000 broadcasts, each with its delivery
   and first history row), timed from the call to the commit (goal: ≤ 10 s).
2. idle scheduler (SQLite only, where `loa scheduler` runs with those rows): a real
   `loa scheduler` process for --idle-seconds; its CPU and RSS (psutil). Its sweep must
   not read the whole horizon every 20 s.
3. one slot start: every commune's morning broadcast of the first day is due at the
   same instant; the dispatcher's fire job for that instant (claim, items, the agent
   driver's start, one attempt row each) is timed (goal: done within 2 s of due time).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import psutil
from machine import describe

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scheduler import areas, bulletins, chain, planning, service  # noqa: E402
from scheduler.auth import Actor  # noqa: E402
from scheduler.context import Loa, build_loa  # noqa: E402
from scheduler.dispatch import fire_due  # noqa: E402
from scheduler.models import Endpoint, Priority, Role  # noqa: E402
from scheduler.settings import load_settings  # noqa: E402

CENTRE = Actor("user:bench", Role.CENTRE)
TEXT = "Ủy ban nhân dân xã thông báo lịch tiếp công dân trong tuần."


@contextmanager
def database(backend: str) -> Iterator[str | None]:
    if backend == "sqlite":
        yield None
        return
    from tests.postgres_server import running_postgres

    with running_postgres() as server:
        server.execute('CREATE DATABASE "bench"')
        yield server.url("bench")


def country(data: Path, url: str | None) -> Loa:
    env = {"LOA_DATA": str(data), "LOA_SECRET_KEY": "bench-secret-0123456789abcdef"}
    env |= {"LOA_TTS_ENGINE": "espeak"} | ({"LOA_DATABASE_URL": url} if url else {})
    loa = build_loa(load_settings(env))
    with loa.transaction() as session:
        areas.import_units(session, areas.official_units())
    with loa.transaction() as session:
        ids = [c.id for c in areas.communes(session)]
        session.bulk_insert_mappings(
            Endpoint,  # type: ignore[arg-type]
            [
                {"commune_id": c, "name": "Cụm 1", "kind": "agent", "active": True,
                 "created_at": loa.now(), "state": "down"}
                for c in ids
            ],
        )  # fmt: skip
    return loa


def run(backend: str, days: int, idle_seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp, database(backend) as url:
        data = Path(tmp)
        t0 = time.perf_counter()
        loa = country(data, url)
        with loa.transaction() as session:
            communes = len(areas.communes(session))
            b = bulletins.create_bulletin(
                session, CENTRE, title="CCHC", text=TEXT, topic="CCHC",
                priority=Priority.NORMAL, now=loa.now(), max_chars=20000,
            )  # fmt: skip
            bulletins.approve(session, Actor("user:admin", Role.ADMIN), b, loa.now())
        service.render_bulletin(loa, CENTRE, b.id)
        print(f"\n[{backend}] {communes} communes, one agent each, set up in "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        tz = loa.settings.timezone
        first = (loa.now() + timedelta(days=1)).astimezone(tz).date()
        rule = planning.Rule(
            slot_ids=(1, 2), date_from=first, date_to=first + timedelta(days=days - 1)
        )
        cpu0, t0 = time.process_time(), time.perf_counter()
        placed = service.place(loa, CENTRE, b.id, planning.Targets(all=True), rule)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(f"materialise: {placed.broadcasts} broadcasts ({days} days × 2 slots), "
              f"{placed.overflow} overflow, in {wall:.2f} s (cpu {cpu:.2f} s, load "
              f"{os.getloadavg()[0]:.2f}); goal ≤ 10 s: "
              f"{'met' if wall <= 10 else 'NOT met'}")  # fmt: skip
        t0 = time.perf_counter()
        sealed = chain.seal_all(loa.transaction)
        print(f"seal the history rows into the as-run chain: {sealed} in "
              f"{time.perf_counter() - t0:.2f} s (the scheduler's job does this once)")  # fmt: skip
        if backend == "sqlite":
            idle(data, idle_seconds)
        morning = datetime.combine(first, clock_time(5, 30), tz)
        t0 = time.perf_counter()
        fire_due(loa, morning.astimezone(UTC))
        took = time.perf_counter() - t0
        print(f"slot start: {communes} broadcasts due at one instant claimed and started "
              f"in {took:.2f} s (load {os.getloadavg()[0]:.2f}); goal ≤ 2 s: "
              f"{'met' if took <= 2 else 'NOT met'}")  # fmt: skip
        loa.close()


def idle(data: Path, seconds: float) -> None:
    env = {**os.environ, "LOA_DATA": str(data), "LOA_SECRET_KEY": "bench-secret-0123456789abcdef"}
    loa_bin = Path(sys.executable).with_name("loa")
    proc = subprocess.Popen([str(loa_bin), "scheduler"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    p = psutil.Process(proc.pid)
    time.sleep(10)  # start, first sweep and plan run
    c0 = p.cpu_times()
    time.sleep(seconds)
    c1 = p.cpu_times()
    rss = p.memory_info().rss / 2**20
    proc.terminate()
    proc.wait(timeout=30)
    used = (c1.user + c1.system) - (c0.user + c0.system)
    print(f"idle `loa scheduler` with those rows: {used / seconds:.3f} core over {seconds:.0f} s, "
          f"RSS {rss:.0f} MiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args()
    print(f"machine: {describe()}")
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        run(backend, args.days, args.idle_seconds)


if __name__ == "__main__":
    main()

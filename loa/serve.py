"""The all-in-one process: panel + API + dispatcher (+ virtual speakers)."""

from __future__ import annotations

import gc
import logging
import signal
import sys
from collections.abc import Callable
from types import FrameType

from flask import Flask

from scheduler.context import Loa
from scheduler.demo import DEMO_USERS, seed_demo, seed_operator_task
from scheduler.dispatch import Dispatcher
from scheduler.service import sync_virtual_speakers
from scheduler.wakeups import start_wakeups
from scheduler.wiring import install_drivers
from web import create_app
from web.server import make_server

log = logging.getLogger("loa.serve")
GC_THRESHOLDS = (50_000, 20, 100)


def _exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(loa: Loa, host: str, port: int, demo: bool, virtual_speakers: bool) -> None:
    """Wire drivers, timers and the web app around `loa`, then serve until stopped."""
    # A slot for a province makes tens of thousands of short-lived objects at once; the
    # default collector thresholds spend seconds re-scanning them (measured: the last
    # MQTT `play` of 10,000 came twice as late).
    gc.set_threshold(*GC_THRESHOLDS)
    seeded = False
    if demo:
        with loa.transaction() as session:
            seeded = seed_demo(session, loa.now())
        if seeded:
            log.info("seeded the demo district (Huyện Triệu Sơn, 34 communes)")
    install_drivers(loa, virtual_speakers=virtual_speakers)
    speakers = sync_virtual_speakers(loa, virtual_speakers)
    dispatcher = Dispatcher(loa)
    dispatcher.start()
    if seeded and virtual_speakers:
        # The visible demo (scripts/run): Thọ Sơn confirms by hand, and has a task waiting.
        seed_operator_task(loa)
    app = create_app(loa)
    signal.signal(signal.SIGTERM, _exit)
    url = f"http://{host}:{port}"
    print(f"Loa is running at {url}  (API: {url}/api/v1, Ctrl+C to stop)", flush=True)
    if virtual_speakers:
        print(f"{speakers} communes play on virtual speakers", flush=True)
    if demo:
        print("Demo logins:", flush=True)
        for user in DEMO_USERS:
            print(f"  {user.username} / {user.password}  ({user.role.value})", flush=True)
    _run_http(loa, app, host, port, on_stop=dispatcher.shutdown)


def serve_web(loa: Loa, host: str, port: int) -> None:
    """The panel and API alone: no timers, no drivers but the agents' (served here)."""
    signal.signal(signal.SIGTERM, _exit)
    print(f"Loa web at http://{host}:{port}", flush=True)
    _run_http(loa, create_app(loa), host, port)


def _run_http(
    loa: Loa, app: Flask, host: str, port: int, on_stop: Callable[[], None] = lambda: None
) -> None:
    """Serve until Ctrl+C or SIGTERM, with wake-ups from the other processes on the same
    PostgreSQL database (several `loa serve` or `loa web`), then stop everything."""
    wakeups = start_wakeups(loa)
    server = make_server(loa, app, host, port)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if wakeups:
            wakeups.close()
        on_stop()
        app.extensions["loa_jobs"].close()  # a job cut short goes back to the queue
        loa.close()
        print("Loa stopped.", file=sys.stderr, flush=True)


def serve_scheduler(loa: Loa, virtual_speakers: bool) -> None:
    """Planning, dispatch and drivers alone, until SIGTERM or Ctrl+C."""
    gc.set_threshold(*GC_THRESHOLDS)
    install_drivers(loa, virtual_speakers=virtual_speakers)
    sync_virtual_speakers(loa, virtual_speakers)
    dispatcher = Dispatcher(loa)
    dispatcher.start()
    wakeups = start_wakeups(loa)
    signal.signal(signal.SIGTERM, _exit)
    print("Loa scheduler running", flush=True)
    try:
        signal.pause()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if wakeups:
            wakeups.close()
        dispatcher.shutdown()
        loa.close()
        print("Loa scheduler stopped.", file=sys.stderr, flush=True)

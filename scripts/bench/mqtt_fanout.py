"""A province's slot over MQTT: 10,000 endpoints commanded at once, then 10,000 reports back.

    .venv/bin/python scripts/bench/mqtt_fanout.py [--endpoints 10000] [--lead 20]
        [--protocol 5|3.1.1] [--profile]

The database: Thanh Hóa's 559 communes of the 2021 official list (SQLite, in a temporary
directory), 10,000 `mqtt` endpoints spread over them (bulk inserts), one bulletin
rendered with espeak-ng and scheduled in every commune `--lead` seconds ahead. Then the
real thing: `loa`'s Dispatcher (APScheduler timer at the due time, batch claim), the
MQTT driver and bridge, and a real Mosquitto on a free loopback port (persistence on,
`max_queued_messages` raised as docs/mqtt.md advises). A recorder in another process
subscribes to `loa/ep/+/cmd` and notes each message's arrival.

Printed: how late the first, median, 99th-percentile and last `play` arrived after the
due time, messages per second, and the CPU time and peak RSS of the server process and
of Mosquitto. Then a publisher in another process sends one `started` event per
delivery, then one `finished` per delivery, to `loa/ep/{id}/event` at QoS 1, and the
time until every one is in the database is printed. Targets (issue 6): the last `play`
at most 1 s after the due time; 10,000 reports ingested in at most 10 s.

`--profile` runs the dispatch at the due time in the main thread under cProfile, instead
of through the Dispatcher's timer, and prints the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import getpass
import json
import logging
import pstats
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psutil
from machine import describe
from paho.mqtt.enums import CallbackAPIVersion

from loa.serve import GC_THRESHOLDS

PROVINCE = "38"  # Tỉnh Thanh Hóa: 559 communes in the 2021 list

BROKER_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
user {user}
persistence true
persistence_location {data}/
max_queued_messages 1000000
log_dest file {data}/mosquitto.log
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_broker(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = work / "mosquitto.conf"
    config.write_text(BROKER_CONFIG.format(port=port, user=getpass.getuser(), data=work))
    process = subprocess.Popen(
        ["/usr/sbin/mosquitto", "-c", str(config)], stderr=subprocess.DEVNULL
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.02)
    raise SystemExit("mosquitto did not start")


# --- helper processes ----------------------------------------------------------------------


def _mqtt_string(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n // 128, n % 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def recorder(port: int, out: Path, expect: int) -> None:
    """Subscribe to every endpoint's commands at QoS 0 over a bare socket (MQTT 3.1.1, a
    few lines of framing) and write `arrival action` lines. A paho subscriber parses
    ~10,000 messages/s and would measure itself, not the broker; this one timestamps
    each `recv` of up to 1 MiB and only finds the packet boundaries."""
    s = socket.create_connection(("127.0.0.1", port))
    body = _mqtt_string(b"MQTT") + bytes([4, 0x02, 0, 0]) + _mqtt_string(b"bench-recorder")
    s.sendall(bytes([0x10]) + _remaining_length(len(body)) + body)
    assert s.recv(4)[0] == 0x20, "no CONNACK"
    body = struct.pack("!H", 1) + _mqtt_string(b"loa/ep/+/cmd") + bytes([0])
    s.sendall(bytes([0x82]) + _remaining_length(len(body)) + body)
    assert s.recv(5)[0] == 0x90, "no SUBACK"
    print("ready", flush=True)
    lines: list[str] = []
    buf, plays = b"", 0
    while plays < expect:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        arrived = time.time()
        buf += chunk
        i = 0
        while len(buf) - i >= 2:
            length, multiplier, j = 0, 1, i + 1
            while j < len(buf):
                byte = buf[j]
                length += (byte & 127) * multiplier
                multiplier *= 128
                j += 1
                if not byte & 128:
                    break
            else:
                break
            if len(buf) < j + length:
                break
            if buf[i] >> 4 == 3:  # PUBLISH (QoS 0: topic, then the payload)
                topic_length = struct.unpack_from("!H", buf, j)[0]
                start = j + 2 + topic_length
                action = "play" if b'"action":"play"' in buf[start : start + 24] else "other"
                plays += action == "play"
                lines.append(f"{arrived:.6f} {action}")
            i = j + length
        buf = buf[i:]
    s.close()
    out.write_text("\n".join(lines) + "\n")


def publisher(port: int, events_file: Path) -> None:
    """Publish the events in `events_file` ([endpoint id, payload]) at QoS 1, as fast as
    the broker acknowledges them; print when the first left and the last was acknowledged."""
    events = json.loads(events_file.read_text())
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-devices", protocol=paho.MQTTv311)
    c.max_inflight_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    first = time.time()
    infos = [
        c.publish(f"loa/ep/{endpoint_id}/event", json.dumps(payload), qos=1)
        for endpoint_id, payload in events
    ]
    for info in infos:
        info.wait_for_publish(120)
    print(json.dumps({"first": first, "acked": time.time()}), flush=True)
    c.disconnect()
    c.loop_stop()


# --- the server side -----------------------------------------------------------------------


def build(work: Path, endpoints: int, broker_url: str) -> Any:
    from sqlalchemy import insert

    from scheduler import areas, bulletins, service
    from scheduler.auth import Actor
    from scheduler.context import build_loa
    from scheduler.models import Area, Endpoint, Priority, Role
    from scheduler.settings import load_settings

    settings = load_settings(
        {
            "LOA_DATA": str(work / "data"),
            "LOA_SECRET_KEY": "bench-secret-key-0123456789",
            "LOA_TTS_ENGINE": "espeak",
            "LOA_MQTT_URL": broker_url,
        }
    )
    loa = build_loa(settings)
    actor = Actor("user:bench", Role.CENTRE)
    started = time.perf_counter()
    with loa.transaction() as session:
        rows = [u for u in areas.official_units() if u.province_code == PROVINCE]
        areas.import_units(session, rows)
        communes = session.query(Area.id, Area.code).filter(Area.level == "commune").all()
        now = loa.now()
        session.execute(
            insert(Endpoint),
            [
                {
                    "commune_id": communes[n % len(communes)][0],
                    "name": f"Cụm loa {n // len(communes) + 1}",
                    "kind": "mqtt",
                    "active": True,
                    "created_at": now,
                    "state": "down",
                }
                for n in range(endpoints)
            ],
        )
        bulletin = bulletins.create_bulletin(
            session, actor, title="Thông báo của tỉnh",
            text="Ủy ban nhân dân tỉnh thông báo lịch tiếp công dân tháng này.",
            topic="CCHC", priority=Priority.NORMAL, now=now, max_chars=20000,
        )  # fmt: skip
        bulletins.approve(session, actor, bulletin, now)
        bulletin_id = bulletin.id
    service.render_bulletin(loa, actor, bulletin_id)
    print(
        f"database: {len(communes)} communes, {endpoints} endpoints, bulletin rendered "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return loa, actor, bulletin_id, [code for _, code in communes]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def usage(process: psutil.Process) -> tuple[float, int]:
    times = process.cpu_times()
    return times.user + times.system, process.memory_info().rss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--lead", type=float, default=20, help="seconds from scheduling to due")
    parser.add_argument("--protocol", choices=("5", "3.1.1"), default="5")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=GC_THRESHOLDS[0],
        help="gc.set_threshold(N, 20, 100) in the server process (default: loa serve's; 0: off)",
    )
    parser.add_argument(
        "--no-health", action="store_true", help="without the endpoint health sweep's timer"
    )
    parser.add_argument("--recorder", nargs=3, metavar=("PORT", "OUT", "EXPECT"))
    parser.add_argument("--publisher", nargs=2, metavar=("PORT", "EVENTS"))
    args = parser.parse_args()
    if args.recorder:
        recorder(int(args.recorder[0]), Path(args.recorder[1]), int(args.recorder[2]))
        return
    if args.publisher:
        publisher(int(args.publisher[0]), Path(args.publisher[1]))
        return

    from sqlalchemy import func, select

    from scheduler import dispatch, service
    from scheduler.drivers.mqtt import MqttDriver
    from scheduler.models import Delivery, DeliveryAttempt, Status
    from scheduler.mqtt import BrokerAddress, MqttBridge

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("scheduler.mqtt").setLevel(logging.INFO)
    logging.getLogger("scheduler.dispatch").setLevel(logging.ERROR)  # one line per delivery
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    print(describe())
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold, 20, 100)
        print(f"gc.set_threshold({args.gc_threshold}, 20, 100)")
    work = Path(tempfile.mkdtemp(prefix="loa-bench-mqtt-"))
    broker, port = start_broker(work)
    me, broker_process = psutil.Process(), psutil.Process(broker.pid)
    try:
        loa, actor, bulletin_id, codes = build(work, args.endpoints, f"mqtt://127.0.0.1:{port}")
        protocol = paho.MQTTv5 if args.protocol == "5" else paho.MQTTv311
        bridge = MqttBridge(
            BrokerAddress.parse(f"mqtt://127.0.0.1:{port}"), "loa-bench-scheduler", loa,
            protocol=protocol,
        )  # fmt: skip
        driver = MqttDriver(bridge, loa.now)
        loa.drivers["mqtt"] = driver
        bridge.start()
        assert bridge.wait_connected(10)
        calls: list[tuple[float, float, int]] = []
        start_many = driver.start_many

        def timed_start_many(items: list[Any]) -> dict[int, Any]:
            began = time.time()
            errors = start_many(items)
            calls.append((began, time.time(), len(items)))
            return errors

        driver.start_many = timed_start_many  # type: ignore[method-assign]

        out = work / "arrivals.txt"
        rec = subprocess.Popen(
            [sys.executable, __file__, "--recorder", str(port), str(out), str(args.endpoints)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert rec.stdout is not None and rec.stdout.readline().strip() == "ready"

        dispatcher = dispatch.Dispatcher(loa)
        if not args.profile:
            dispatcher.start()
            if args.no_health:
                dispatcher.scheduler.remove_job("health")
        now = loa.now()
        due = (now + timedelta(seconds=args.lead)).replace(microsecond=0)
        began = time.perf_counter()
        made = service.schedule_bulletin(loa, actor, bulletin_id, codes, due)
        scheduled = time.perf_counter() - began
        print(f"scheduled {len(made)} broadcasts in {scheduled:.1f} s (with 1 sync per endpoint)")
        if loa.now() >= due - timedelta(seconds=1):
            raise SystemExit("scheduling took longer than --lead; give a larger --lead")

        time.sleep(max(0.0, (due - loa.now()).total_seconds() - 0.5))
        cpu0, _ = usage(me)
        bcpu0, _ = usage(broker_process)
        if args.profile:
            time.sleep(max(0.0, (due - loa.now()).total_seconds()))
            profiler = cProfile.Profile()
            profiler.enable()
            dispatch.fire_due(loa, due)
            profiler.disable()
        rec.wait(timeout=300)
        cpu1, rss = usage(me)
        bcpu1, brss = usage(broker_process)
        due_ts = due.timestamp()
        plays = []
        messages = 0
        for line in out.read_text().split("\n"):
            if line:
                arrived, action = line.split()
                messages += 1
                if action == "play":
                    plays.append(float(arrived) - due_ts)
        with loa.transaction() as session:
            attempts = session.scalar(select(func.count()).select_from(DeliveryAttempt))
            failed = session.scalar(
                select(func.count())
                .select_from(DeliveryAttempt)
                .where(DeliveryAttempt.error.is_not(None))
            )
        print(
            f"\n{len(plays)} play commands (of {messages} messages incl. syncs) after the due time:"
        )
        print(
            f"  first {plays and min(plays):.3f} s, median {statistics.median(plays):.3f} s, "
            f"p99 {percentile(plays, 0.99):.3f} s, last {max(plays):.3f} s"
        )
        span = max(plays) - min(plays)
        print(f"  {len(plays) / span if span else float('inf'):,.0f} plays/s on the wire")
        for b, e, n in calls:
            print(
                f"  driver.start_many({n} items): from {b - due_ts:+.3f} s to {e - due_ts:+.3f} s"
            )
        print(f"  attempts recorded: {attempts}, with an error: {failed}")
        print(
            f"  server CPU {cpu1 - cpu0:.2f} s, RSS {rss / 2**20:.0f} MiB; "
            f"mosquitto CPU {bcpu1 - bcpu0:.2f} s, RSS {brss / 2**20:.0f} MiB"
        )
        if args.profile:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)

        # --- proof of play back: started for all, then finished for all --------------------
        with loa.transaction() as session:
            rows = session.execute(
                select(Delivery.endpoint_id, Delivery.id, Delivery.broadcast_id)
            ).all()
        sha = made[0].audio.sha256
        for kind, status in (("started", Status.PLAYING), ("finished", Status.PLAYED)):
            at = loa.now().isoformat()
            events = [
                [
                    e,
                    {
                        "delivery_id": d,
                        "kind": kind,
                        "at": at,
                        **({"sha256": sha} if kind == "finished" else {}),
                    },
                ]
                for e, d, _ in rows
            ]
            events_file = work / f"events-{kind}.json"
            events_file.write_text(json.dumps(events))
            cpu0, _ = usage(me)
            bcpu0, _ = usage(broker_process)
            pub = subprocess.Popen(
                [sys.executable, __file__, "--publisher", str(port), str(events_file)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip

            def in_db(status: str = status) -> int:
                with loa.transaction() as session:
                    return (
                        session.scalar(
                            select(func.count())
                            .select_from(Delivery)
                            .where(Delivery.status == status)
                        )
                        or 0
                    )

            while in_db() < len(rows):
                time.sleep(0.05)
            done = time.time()
            assert pub.stdout is not None
            sent = json.loads(pub.stdout.readline())
            pub.wait()
            cpu1, rss = usage(me)
            bcpu1, brss = usage(broker_process)
            took = done - sent["first"]
            print(
                f"\n{len(rows)} '{kind}' events: all in the database {took:.2f} s after the "
                f"first was sent ({len(rows) / took:,.0f} events/s; the publisher's last ack "
                f"at {sent['acked'] - sent['first']:.2f} s)"
            )
            print(
                f"  server CPU {cpu1 - cpu0:.2f} s, RSS {rss / 2**20:.0f} MiB; "
                f"mosquitto CPU {bcpu1 - bcpu0:.2f} s, RSS {brss / 2**20:.0f} MiB"
            )
        time.sleep(1)  # the last batch's accounting follows its commit
        rejected = sum(v for k, v in bridge.stats.items() if k.startswith("rejected"))
        print(f"\nbridge: {bridge.stats['received']} events received, {rejected} rejected")
        if not args.profile:
            dispatcher.shutdown()
        loa.close()
    finally:
        broker.terminate()
        broker.wait()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

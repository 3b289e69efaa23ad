"""The HTTP front: idle long-polls hold no thread, a change wakes them, the panel stays free."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
import requests
import uvicorn
from sqlalchemy import event

from scheduler import service
from scheduler.clock import SystemClock
from scheduler.context import Loa, build_loa
from scheduler.settings import Settings
from tests.conftest import ADMIN, CENTRE, THO_SON, free_port, make_settings
from tests.test_scheduling import make_bulletin
from web import create_app
from web.server import LongPollFront, make_server, serve_in_thread

pytestmark = pytest.mark.realtime  # scripts/test runs it one test at a time


@dataclass
class Front:
    loa: Loa
    url: str
    port: int
    server: uvicorn.Server


@pytest.fixture
def front(settings: Settings) -> Iterator[Front]:
    """`loa serve`'s front on loopback with only two worker threads."""
    two_threads = make_settings(settings.data_dir, LOA_WEB_THREADS="2")
    loa = build_loa(two_threads, clock=SystemClock())
    port = free_port()
    server = make_server(loa, create_app(loa), "127.0.0.1", port)
    thread = serve_in_thread(server)
    yield Front(loa, f"http://127.0.0.1:{port}", port, server)
    server.should_exit = True
    thread.join(timeout=10)
    loa.close()


def open_long_poll(port: int, token: str, version: str, wait: int = 20) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        f"GET /api/v1/agent/schedule?version={version}&wait={wait} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    return sock


def answered(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    try:
        return sock.recv(65536)
    except TimeoutError:
        return b""


def endpoint_with_version(front: Front, name: str) -> tuple[int, str, str]:
    endpoint, token = service.create_endpoint(front.loa, ADMIN, THO_SON, name, "agent")
    headers = {"Authorization": f"Bearer {token}"}
    first = requests.get(f"{front.url}/api/v1/agent/schedule", headers=headers, timeout=5)
    assert first.status_code == 200, first.text
    return endpoint.id, token, first.json()["version"]


def test_many_idle_long_polls_leave_the_panel_and_api_answering(front: Front) -> None:
    endpoints = [endpoint_with_version(front, f"Cụm {i}") for i in range(40)]
    polls = [open_long_poll(front.port, token, version) for _, token, version in endpoints]
    time.sleep(0.5)  # all of them are now waiting; a thread-per-request server has 2 threads
    start = time.monotonic()
    login = requests.get(f"{front.url}/login", timeout=5)
    api = requests.get(f"{front.url}/api/v1/openapi.json", timeout=5)
    assert login.status_code == 200 and api.status_code == 200
    assert time.monotonic() - start < 3
    assert all(answered(sock, 0.05) == b"" for sock in polls)  # still waiting
    for sock in polls:
        sock.close()


def test_a_change_wakes_every_waiting_agent_at_once(front: Front) -> None:
    endpoints = [endpoint_with_version(front, f"Cụm {i}") for i in range(30)]
    polls = [open_long_poll(front.port, token, version) for _, token, version in endpoints]
    time.sleep(0.3)
    start = time.monotonic()
    front.loa.notifier.notify_many([endpoint_id for endpoint_id, _, _ in endpoints])
    answers = [answered(sock, 5) for sock in polls]
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers), answers[:1]
    assert time.monotonic() - start < 5
    for sock in polls:
        sock.close()


def test_a_long_poll_with_an_unknown_token_is_refused_at_once(front: Front) -> None:
    sock = open_long_poll(front.port, "loa_not-a-token", "x-1")
    assert answered(sock, 3).startswith(b"HTTP/1.1 401")
    sock.close()


def test_a_long_poll_with_a_bad_wait_gets_a_clear_error(front: Front) -> None:
    _, token, version = endpoint_with_version(front, "Cụm 1")
    r = requests.get(
        f"{front.url}/api/v1/agent/schedule",
        params={"version": version, "wait": "soon"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert r.status_code == 422 and r.json()["error"] == "invalid_wait"


def test_a_long_poll_answers_unchanged_after_its_wait(front: Front) -> None:
    _, token, version = endpoint_with_version(front, "Cụm 1")
    start = time.monotonic()
    r = requests.get(
        f"{front.url}/api/v1/agent/schedule",
        params={"version": version, "wait": "1"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert r.status_code == 200 and r.json()["version"] == version
    assert 0.9 < time.monotonic() - start < 4


def front_app(front: Front) -> LongPollFront:
    app = front.server.config.app
    assert isinstance(app, LongPollFront)
    return app


def test_an_agent_that_hangs_up_while_waiting_is_forgotten(front: Front) -> None:
    _, token, version = endpoint_with_version(front, "Cụm 1")
    sock = open_long_poll(front.port, token, version)
    deadline = time.monotonic() + 5
    while not front_app(front).waiting and time.monotonic() < deadline:
        time.sleep(0.02)
    assert front_app(front).waiting
    sock.close()
    while front_app(front).waiting and time.monotonic() < deadline:
        time.sleep(0.02)
    assert front_app(front).waiting == {}


def test_a_woken_agent_gets_the_same_schedule_the_view_gives(front: Front) -> None:
    endpoint_id, token, version = endpoint_with_version(front, "Cụm 1")
    bulletin_id = make_bulletin(front.loa)
    at = front.loa.now() + timedelta(minutes=5)
    headers = {"Authorization": f"Bearer {token}"}
    with ThreadPoolExecutor(1) as pool:
        woken = pool.submit(
            requests.get,
            f"{front.url}/api/v1/agent/schedule",
            params={"version": version, "wait": "20", "agent_version": "loa-agent/test"},
            headers=headers,
            timeout=25,
        )
        time.sleep(0.3)
        service.schedule_bulletin(front.loa, CENTRE, bulletin_id, [THO_SON], at)
        answer = woken.result().json()
    view = requests.get(f"{front.url}/api/v1/agent/schedule", headers=headers, timeout=5).json()
    assert answer["version"] != version and len(answer["items"]) == 1
    assert {**answer, "server_time": None} == {**view, "server_time": None}
    assert answer["items"][0]["audio_url"].startswith("/api/v1/audio/")
    assert endpoint_id in front.loa.heartbeats.take()


def test_an_idle_agents_repeated_polls_cost_no_query(front: Front) -> None:
    _, token, version = endpoint_with_version(front, "Cụm 1")
    params = {"version": version, "wait": "0.5"}
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{front.url}/api/v1/agent/schedule"
    assert requests.get(url, params=params, headers=headers, timeout=5).status_code == 200
    queries: list[str] = []
    listener = lambda *args: queries.append(args[2])  # noqa: E731 - (conn, cursor, statement, …)
    event.listen(front.loa.engine, "before_cursor_execute", listener)
    try:
        for _ in range(3):
            r = requests.get(url, params=params, headers=headers, timeout=5)
            assert r.status_code == 200 and r.json()["version"] == version
    finally:
        event.remove(front.loa.engine, "before_cursor_execute", listener)
    assert queries == []


def test_reports_go_through_the_front_with_the_apis_answers_and_errors(front: Front) -> None:
    _, token, _ = endpoint_with_version(front, "Cụm 1")
    made = service.schedule_bulletin(
        front.loa, CENTRE, make_bulletin(front.loa), [THO_SON], front.loa.now()
    )
    delivery_id = made[0].deliveries[0].id
    url = f"{front.url}/api/v1/agent/reports"
    at = front.loa.now().isoformat()

    def post(body: object, who: str = token) -> requests.Response:
        return requests.post(url, json=body, headers={"Authorization": f"Bearer {who}"}, timeout=5)

    ok = post({"reports": [{"delivery_id": delivery_id, "kind": "delivered", "at": at}]})
    assert ok.status_code == 200 and ok.json() == {"received": 1, "changed": 1}
    again = post({"reports": [{"delivery_id": delivery_id, "kind": "delivered", "at": at}]})
    assert again.json() == {"received": 1, "changed": 0}  # idempotent
    unknown = post({"reports": [{"delivery_id": 999999, "kind": "started", "at": at}]})
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_delivery"
    malformed = post({"reports": [{"delivery_id": delivery_id, "kind": "sang"}]})
    assert malformed.status_code == 400 and malformed.json()["error"] == "invalid_body"
    stranger = post({"reports": []}, who="loa_not-a-token")
    assert stranger.status_code == 401 and stranger.json()["error"] == "invalid_token"
    huge = requests.post(
        url, data=b"x" * (5 * 1024 * 1024), headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )  # fmt: skip
    assert huge.status_code == 413

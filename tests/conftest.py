"""Shared fixtures. The outside world is faked at one seam each:
gTTS's network (requests' transport), the sound card (file sinks / silent output),
the clock (ManualClock passed into the domain)."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from scheduler import areas
from scheduler.auth import Actor, create_token, parse_role
from scheduler.clock import ManualClock
from scheduler.context import Loa, build_loa
from scheduler.demo import seed_demo
from scheduler.models import Role
from scheduler.settings import Settings, load_settings
from web import create_app

DATA = Path(__file__).parent / "data"
THO_SON = "15667"
THO_BINH = "15670"
THO_TIEN = "15673"
START = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # 08:00 in Triệu Sơn
SHORT_TEXT = "UBND xã thông báo lịch tiếp công dân."

ADMIN = Actor("user:admin", Role.ADMIN)
CENTRE = Actor("user:trungtam", Role.CENTRE)
REPORTER = Actor("user:baocao", Role.REPORTER)


# --- network seam -------------------------------------------------------------------------

_real_send = requests.adapters.HTTPAdapter.send


def _is_loopback(url: str) -> bool:
    host = requests.utils.urlparse(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches the internet: non-loopback requests fail like a dead link."""

    def send(self: Any, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        if _is_loopback(request.url or ""):
            return _real_send(self, request, **kwargs)
        raise requests.ConnectionError(f"no internet in tests: {request.url}")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)


@pytest.fixture(scope="session")
def speech_mp3(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real MP3 of Vietnamese speech, as Google's TTS would answer."""
    out = tmp_path_factory.mktemp("gtts") / "speech.mp3"
    espeak = subprocess.run(
        ["espeak-ng", "-v", "vi", "--stdout", "xin chào bà con"], capture_output=True, check=True
    )
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", "-", "-ac", "1", "-b:a", "32k", str(out)],
        input=espeak.stdout,
        check=True,
    )
    return out.read_bytes()


@pytest.fixture
def google_tts(monkeypatch: pytest.MonkeyPatch, speech_mp3: bytes) -> list[str]:
    """Google's TTS endpoint answering with speech; returns the URLs it was asked."""
    asked: list[str] = []
    encoded = base64.b64encode(speech_mp3).decode()
    line = f'[["wrb.fr","jQ1olc","[\\"{encoded}\\"]",null,null,null,"generic"]]'

    def send(self: Any, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        if _is_loopback(request.url or ""):
            return _real_send(self, request, **kwargs)
        asked.append(request.url or "")
        response = requests.Response()
        response.status_code = 200
        response._content = (")]}'\n\n" + line + "\n").encode()
        response.request = request
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    return asked


# --- database and context -----------------------------------------------------------------


def make_settings(data_dir: Path, **extra: str) -> Settings:
    env = {
        "LOA_DATA": str(data_dir),
        "LOA_SECRET_KEY": "test-secret-key-0123456789",
        "LOA_TTS_ENGINE": "espeak",
        "LOA_GRACE_SECONDS": "60",
        **extra,
    }
    return load_settings(env)


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with the demo district, copied by each test."""
    data = tmp_path_factory.mktemp("template")
    loa = build_loa(make_settings(data))
    with loa.transaction() as session:
        seed_demo(session, START)
    loa.close()
    return data / "loa.db"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules marked `both_databases` run each test on SQLite and on PostgreSQL."""
    if "backend" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_databases") is not None
        metafunc.parametrize("backend", ["sqlite", "postgresql"] if both else ["sqlite"])


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A throwaway PostgreSQL server with a migrated, seeded template database."""
    from tests.postgres_server import running_postgres

    with running_postgres() as server:
        server.execute('CREATE DATABASE "loa_template"')
        data = tmp_path_factory.mktemp("pg-template")
        loa = build_loa(make_settings(data, LOA_DATABASE_URL=server.url("loa_template")))
        with loa.transaction() as session:
            seed_demo(session, START)
        loa.close()
        yield server


@pytest.fixture
def settings(
    tmp_path: Path, seeded_db: Path, backend: str, request: pytest.FixtureRequest
) -> Settings:
    if backend == "postgresql":
        url = request.getfixturevalue("postgres").new_database("loa_template")
        return make_settings(tmp_path, LOA_DATABASE_URL=url)
    shutil.copyfile(seeded_db, tmp_path / "loa.db")
    return make_settings(tmp_path)


@pytest.fixture
def loa(settings: Settings, clock: ManualClock) -> Iterator[Loa]:
    ctx = build_loa(settings, clock=clock)
    yield ctx
    ctx.close()


@pytest.fixture
def app(loa: Loa) -> Flask:
    app = create_app(loa)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def new_token(loa: Loa, role: str, commune: str | None = None, name: str = "test") -> str:
    with loa.transaction() as session:
        area = areas.commune_by_code(session, commune) if commune else None
        return create_token(session, name, parse_role(role), area, loa.now())


@dataclass
class Api:
    """A JSON client for /api/v1 with one token."""

    client: FlaskClient
    token: str

    def call(self, method: str, path: str, json: Any = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.client.open(f"/api/v1{path}", method=method, json=json, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, json, **kw)

    def approved_bulletin(self, text: str = SHORT_TEXT, **fields: Any) -> int:
        r = self.post("/bulletins", {"title": "Thông báo", "text": text, **fields})
        assert r.status_code == 201, r.json
        bulletin_id: int = r.json["id"]
        assert self.post(f"/bulletins/{bulletin_id}/approve").status_code == 200
        return bulletin_id


@pytest.fixture
def api(client: FlaskClient, loa: Loa) -> Api:
    return Api(client, new_token(loa, "centre"))


@pytest.fixture
def api_for(client: FlaskClient, loa: Loa) -> Callable[..., Api]:
    def make(role: str, commune: str | None = None) -> Api:
        return Api(client, new_token(loa, role, commune, name=f"{role}-{commune}"))

    return make


def later(loa: Loa, seconds: float) -> str:
    return (loa.now() + timedelta(seconds=seconds)).isoformat()


def audio_duration(path: Path) -> float:
    """Seconds of audio in a file, as ffprobe measures it."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port

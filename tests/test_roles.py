"""Roles: who may do what, on which commune. One table, checked through the API."""

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from scheduler.auth import check_password
from scheduler.context import Loa
from scheduler.settings import Settings
from tests.conftest import THO_BINH, THO_SON, Api, later

ROLES = ("admin", "centre", "approver", "operator", "reporter")
# action -> the roles allowed; an operator of Thọ Sơn acts on a Thọ Sơn broadcast.
ALLOWED = {
    "write a bulletin": {"admin", "centre"},
    "approve": {"admin", "centre", "approver"},
    "place": {"admin", "centre"},
    "schedule": {"admin", "centre"},
    "cancel": {"admin", "centre"},
    "confirm own commune": {"admin", "centre", "operator"},
    "read the log": set(ROLES),
    "export": set(ROLES),
    "read the audit log": {"admin"},
}


@pytest.fixture
def world(api_for: Callable[..., Api], loa: Loa) -> dict[str, Any]:
    centre = api_for("centre")
    draft = centre.post("/bulletins", {"title": "Nháp", "text": "Thông báo nháp."}).json["id"]
    approved = centre.approved_bulletin()
    (b,) = centre.post(
        "/broadcasts", {"bulletin_id": approved, "communes": [THO_SON], "at": later(loa, 60)}
    ).json
    (aired,) = centre.post(
        "/broadcasts", {"bulletin_id": approved, "communes": [THO_SON], "at": later(loa, 1)}
    ).json
    return {"draft": draft, "approved": approved, "broadcast": b["id"], "aired": aired["id"]}


def attempt(who: Api, action: str, world: dict[str, Any], loa: Loa) -> int:
    slot = {"slots": [1], "from": "2026-11-27", "to": "2026-11-27"}
    calls: dict[str, Callable[[], Any]] = {
        "write a bulletin": lambda: who.post("/bulletins", {"title": "T", "text": "Nội dung."}),
        "approve": lambda: who.post(f"/bulletins/{world['draft']}/approve"),
        "place": lambda: who.post(
            "/placements", {"bulletin_id": world["approved"], "rule": slot, "communes": "all"}
        ),
        "schedule": lambda: who.post(
            "/broadcasts",
            {"bulletin_id": world["approved"], "communes": [THO_BINH], "at": later(loa, 90)},
        ),
        "cancel": lambda: who.post(f"/broadcasts/{world['broadcast']}/cancel"),
        "confirm own commune": lambda: who.post(
            f"/broadcasts/{world['aired']}/confirm", {"aired": False, "reason": "mất điện"}
        ),
        "read the log": lambda: who.get("/broadcasts"),
        "export": lambda: who.get("/reports/broadcasts.csv"),
        "read the audit log": lambda: who.get("/audit"),
    }
    status: int = calls[action]().status_code
    return status


@pytest.mark.parametrize("action", list(ALLOWED))
@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_do_what_the_table_says_and_no_more(
    api_for: Callable[..., Api], loa: Loa, world: dict[str, Any], role: str, action: str
) -> None:
    who = api_for(role, THO_SON if role == "operator" else None)
    loa.clock.advance(30)  # type: ignore[attr-defined]  # the second broadcast has aired
    status = attempt(who, action, world, loa)
    if role in ALLOWED[action]:
        assert status < 400, (role, action, status)
    else:
        assert status == 403, (role, action, status)


def test_an_operator_sees_and_confirms_only_their_own_communes(
    api_for: Callable[..., Api], loa: Loa, world: dict[str, Any]
) -> None:
    other = api_for("operator", THO_BINH)
    loa.clock.advance(30)  # type: ignore[attr-defined]
    r = other.post(f"/broadcasts/{world['aired']}/confirm", {"aired": True})
    assert r.status_code == 403
    assert other.get("/broadcasts").json == []
    assert other.get(f"/broadcasts/{world['aired']}").status_code == 403


class TestFourEyes:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return replace(settings, four_eyes=True)

    def test_a_bulletin_is_approved_by_someone_other_than_its_author(
        self, api_for: Callable[..., Api], client: FlaskClient
    ) -> None:
        author, approver = api_for("centre"), api_for("approver")
        draft = author.post("/bulletins", {"title": "T", "text": "Nội dung."}).json["id"]
        r = author.post(f"/bulletins/{draft}/approve")
        assert r.status_code == 403 and r.json["error"] == "own_bulletin"
        r = approver.post(f"/bulletins/{draft}/approve")
        assert r.status_code == 200 and r.json["approved_by"] == "token:approver-None"


def test_a_revoked_token_stops_working_at_once(api: Api, loa: Loa, tmp_path: Path) -> None:
    loa_bin = str(Path(sys.executable).with_name("loa"))
    env = {**os.environ, "LOA_DATA": str(loa.settings.data_dir),
           "LOA_DATABASE_URL": loa.settings.database_url}  # fmt: skip
    listed = subprocess.run([loa_bin, "token", "list"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    token_id = next(
        line.split("\t")[0] for line in listed.stdout.splitlines() if "\ttest\t" in line
    )
    assert api.get("/broadcasts").status_code == 200
    revoked = subprocess.run(
        [loa_bin, "token", "revoke", token_id], env=env, capture_output=True, text=True
    )
    assert revoked.returncode == 0, revoked.stderr
    r = api.get("/broadcasts")
    assert r.status_code == 401 and r.json["error"] == "invalid_token"


def test_passwords_stored_before_werkzeug_hashing_still_log_in() -> None:
    salt = bytes.fromhex("00112233445566778899aabbccddeeff")
    digest = hashlib.scrypt(b"loa-admin", salt=salt, n=2**14, r=8, p=1)
    old = f"scrypt${salt.hex()}${digest.hex()}"
    assert check_password("loa-admin", old) and not check_password("loa-admln", old)

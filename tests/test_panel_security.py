"""The panel's guards: Flask-WTF's CSRF tokens, the login rate limit, session cookies, and
the Flask-Babel catalogs the panel speaks from."""

from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from scheduler.clock import ManualClock
from scheduler.context import Loa, build_loa
from scheduler.models import Bulletin, LoginAttempt
from tests.conftest import Api, make_settings
from tests.test_panel import Panel
from web import create_app

TRANSLATIONS = Path(__file__).resolve().parent.parent / "web" / "translations"
LOCKED = "Đăng nhập sai quá nhiều lần. Hãy thử lại sau"


@pytest.fixture
def panel(client: FlaskClient) -> Panel:
    return Panel(client)


def bulletin_count(loa: Loa) -> int:
    with loa.transaction() as session:
        return session.scalar(select(func.count()).select_from(Bulletin)) or 0


@pytest.mark.parametrize("token", [None, "not-the-token"], ids=["missing", "wrong"])
def test_a_form_without_its_csrf_token_is_refused_in_vietnamese_and_changes_nothing(
    panel: Panel, loa: Loa, token: str | None
) -> None:
    panel.login("trungtam", "loa-trungtam")
    before = bulletin_count(loa)
    form = {"title": "Thông báo", "text": "Nội dung", "kind": "speech"}
    r = panel.client.post(
        "/bulletins", data=form if token is None else {**form, "csrf_token": token}
    )
    page = r.get_data(as_text=True)
    assert r.status_code == 400
    assert "Yêu cầu không hợp lệ" in page and "Biểu mẫu đã hết hạn" in page
    assert "CSRF" not in page  # not Flask-WTF's English reason
    assert bulletin_count(loa) == before


def test_a_csrf_token_of_another_session_is_refused(panel: Panel, app: Flask, loa: Loa) -> None:
    other = Panel(app.test_client())
    panel.login("trungtam", "loa-trungtam")
    before = bulletin_count(loa)
    r = panel.client.post(
        "/bulletins", data={"title": "x", "text": "y", "csrf_token": other.csrf()}
    )
    assert r.status_code == 400 and bulletin_count(loa) == before


def test_the_same_form_with_its_token_goes_through(panel: Panel, loa: Loa) -> None:
    panel.login("trungtam", "loa-trungtam")
    before = bulletin_count(loa)
    page = panel.post("/bulletins", {"title": "Thông báo", "text": "Nội dung", "kind": "speech"})
    assert "Đã tạo bản tin." in page and bulletin_count(loa) == before + 1


def test_the_api_takes_posts_without_a_csrf_token_even_beside_a_panel_session(
    panel: Panel, api: Api
) -> None:
    panel.login("trungtam", "loa-trungtam")  # the same client now has a session cookie
    r = api.post("/bulletins", {"title": "Thông báo", "text": "Nội dung"})
    assert r.status_code == 201, r.json
    assert api.post(f"/bulletins/{r.json['id']}/approve").status_code == 200


def test_the_sixth_login_in_15_minutes_is_refused_even_with_the_right_password(
    panel: Panel, clock: ManualClock
) -> None:
    for _ in range(5):
        clock.advance(60)
        assert "Sai tên đăng nhập hoặc mật khẩu." in panel.login("trungtam", "sai-mat-khau")
    page = panel.login("trungtam", "loa-trungtam")
    assert f"{LOCKED} 08:20." in page  # the fifth failure was at 08:05 (Triệu Sơn)
    assert panel.client.get("/bulletins").status_code == 302  # still not logged in
    clock.advance(14 * 60)
    assert LOCKED in panel.login("trungtam", "loa-trungtam")
    clock.advance(60 + 1)
    assert "Lượt phát hôm nay" in panel.login("trungtam", "loa-trungtam")


def test_failures_spread_over_more_than_15_minutes_do_not_lock(
    panel: Panel, clock: ManualClock
) -> None:
    for _ in range(8):
        panel.login("trungtam", "sai-mat-khau")
        clock.advance(4 * 60)  # never five within 15 minutes
    assert "Lượt phát hôm nay" in panel.login("trungtam", "loa-trungtam")


def test_a_successful_login_resets_the_username_count(panel: Panel) -> None:
    for _ in range(4):
        panel.login("trungtam", "sai-mat-khau")
    assert "Lượt phát hôm nay" in panel.login("trungtam", "loa-trungtam")
    panel.client.post("/logout", data={"csrf_token": panel.csrf()})
    for _ in range(4):
        panel.login("trungtam", "sai-mat-khau")
    assert "Lượt phát hôm nay" in panel.login("trungtam", "loa-trungtam")


def test_five_failures_from_one_address_lock_every_username_from_it(app: Flask) -> None:
    guesser = Panel(app.test_client())
    guesser.client.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    for name in ("a", "b", "c", "d", "e"):
        guesser.login(name, "doan-mo")
    assert LOCKED in guesser.login("admin", "loa-admin")
    elsewhere = Panel(app.test_client())  # another address: the username is not locked
    assert "Lượt phát hôm nay" in elsewhere.login("admin", "loa-admin")


def test_the_counts_are_shared_by_every_web_process(loa: Loa) -> None:
    first, second = (Panel(create_app(loa).test_client()) for _ in range(2))
    for _ in range(3):
        first.login("thoson", "sai")
        second.login("thoson", "sai")
    assert LOCKED in first.login("thoson", "loa-thoson")
    with loa.transaction() as session:
        rows = session.scalars(select(LoginAttempt)).all()
        assert len(rows) == 5 and {r.username for r in rows} == {"thoson"}


def test_the_panel_speaks_vietnamese_and_english_from_the_compiled_catalogs(
    panel: Panel,
) -> None:
    assert "Tên đăng nhập" in panel.get("/login")
    panel.login("admin", "loa-admin")
    page = panel.get("/")
    assert "Lượt phát hôm nay" in page and "Nhật ký phát" in page
    assert "Không tìm thấy trang" in panel.client.get("/nowhere").get_data(as_text=True)
    panel.get("/lang/en")
    page = panel.get("/")
    assert "Broadcasts today" in page and "As-run log" in page and "Lượt phát" not in page
    assert "Page not found" in panel.client.get("/nowhere").get_data(as_text=True)
    panel.get("/lang/vi")
    assert "Lượt phát hôm nay" in panel.get("/")


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_each_compiled_catalog_is_up_to_date_with_its_po_file(lang: str) -> None:
    """The .mo files are committed: run `pybabel compile -d web/translations` after an edit."""
    folder = TRANSLATIONS / lang / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as po, (folder / "messages.mo").open("rb") as mo:
        source, compiled = read_po(po), read_mo(mo)
    wanted = {m.id: m.string for m in source if m.id and m.string and not m.fuzzy}
    assert {m.id: m.string for m in compiled if m.id} == wanted
    if lang == "vi":  # every message has its Vietnamese
        assert not [m.id for m in source if m.id and not m.string]


@pytest.mark.parametrize(
    ("public_url", "secure"),
    [("https://loa.trieuson.vn", True), ("http://loa.trieuson.vn:8080", False), (None, False)],
)
def test_the_session_cookie_is_secure_when_the_panel_is_served_over_https(
    tmp_path: Path, seeded_db: Path, clock: ManualClock, public_url: str | None, secure: bool
) -> None:
    (tmp_path / "loa.db").write_bytes(seeded_db.read_bytes())
    extra = {"LOA_PUBLIC_URL": public_url} if public_url else {}
    loa = build_loa(make_settings(tmp_path, **extra), clock=clock)
    try:
        client = create_app(loa).test_client()
        panel = Panel(client)
        cookie = client.get("/login").headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure
        r = client.post(
            "/login",
            data={"username": "admin", "password": "loa-admin", "csrf_token": panel.csrf()},
            base_url="https://localhost" if secure else "http://localhost",
            headers={"Referer": "https://localhost/login"} if secure else {},
        )
        assert r.status_code == 302
        cookie = r.headers["Set-Cookie"]
        assert "Expires=" in cookie and ("Secure" in cookie) is secure  # a 12-hour login
    finally:
        loa.close()

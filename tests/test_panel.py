import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from scheduler import areas
from scheduler.context import Loa
from scheduler.models import Endpoint
from tests.conftest import THO_BINH, THO_SON, Api


class Panel:
    """Drives the panel like a browser: logs in, posts forms with their CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def csrf(self) -> str:
        page = self.client.get("/login").get_data(as_text=True)
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert match
        return match.group(1)

    def login(self, username: str, password: str) -> str:
        r = self.client.post(
            "/login", data={"username": username, "password": password, "csrf_token": self.csrf()},
            follow_redirects=True,
        )  # fmt: skip
        return r.get_data(as_text=True)

    def get(self, path: str) -> str:
        r = self.client.get(path, follow_redirects=True)
        assert r.status_code == 200, r.status_code
        return r.get_data(as_text=True)

    def post(self, path: str, data: dict[str, object]) -> str:
        r = self.client.post(path, data={**data, "csrf_token": self.csrf()}, follow_redirects=True)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_data(as_text=True)


@pytest.fixture
def panel(client: FlaskClient) -> Panel:
    return Panel(client)


def local_input(loa: Loa, seconds: float) -> str:
    return (
        (loa.now() + timedelta(seconds=seconds))
        .astimezone(loa.settings.timezone)
        .strftime("%Y-%m-%dT%H:%M")
    )


def test_pages_need_a_login(client: FlaskClient) -> None:
    r = client.get("/bulletins")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_a_wrong_password_is_refused_in_vietnamese(panel: Panel) -> None:
    assert "Sai tên đăng nhập hoặc mật khẩu." in panel.login("admin", "nope")


def test_the_centre_writes_renders_approves_and_schedules_a_bulletin(
    panel: Panel, loa: Loa
) -> None:
    panel.login("trungtam", "loa-trungtam")
    page = panel.post(
        "/bulletins",
        {
            "title": "Lịch tiếp dân",
            "text": "UBND xã tiếp dân từ 7h30.",
            "topic": "CCHC",
            "priority": "normal",
        },
    )
    assert "Đã tạo bản tin." in page
    assert (
        "ủy ban nhân dân xã tiếp dân từ bảy giờ ba mươi" in page
    )  # spoken text beside the original
    page = panel.post("/bulletins/1/render", {"engine": "espeak", "voice": "vi"})
    assert "Đã tạo âm thanh." in page and "<audio" in page
    assert panel.client.get("/bulletins/1/audio.mp3").status_code == 200
    page = panel.post("/bulletins/1/schedule", {"communes": [THO_SON], "at": local_input(loa, 120)})
    assert "Bản tin chưa được duyệt." in page
    panel.post("/bulletins/1/approve", {})
    page = panel.post(
        "/bulletins/1/schedule", {"communes": [THO_SON, THO_BINH], "at": local_input(loa, 120)}
    )
    assert "Đã lên lịch." in page
    assert "Xã Thọ Sơn" in page and "Xã Thọ Bình" in page and "đã lên lịch" in page


def test_speech_made_offline_says_so_once(panel: Panel) -> None:
    """gTTS unreachable (no internet in tests): espeak-ng speaks, and the page says so
    once, not in a flash message and again in the audio's notice."""
    panel.login("trungtam", "loa-trungtam")
    panel.post("/bulletins", {"title": "Tin", "text": "Lịch tiếp dân.", "priority": "normal"})
    page = panel.post("/bulletins/1/render", {"engine": "auto", "voice": "vi"})  # gTTS first
    assert "Đã tạo âm thanh." in page
    assert page.count("Đã dùng giọng ngoại tuyến: không có internet.") == 1


def test_a_time_in_the_past_is_refused_with_a_readable_message(
    panel: Panel, api: Api, loa: Loa
) -> None:
    bulletin_id = api.approved_bulletin()
    panel.login("trungtam", "loa-trungtam")
    page = panel.post(
        f"/bulletins/{bulletin_id}/schedule", {"communes": [THO_SON], "at": local_input(loa, -3600)}
    )
    assert "Thời điểm đã qua." in page
    page = panel.post(
        f"/bulletins/{bulletin_id}/schedule", {"communes": [THO_SON], "at": "hôm qua"}
    )
    assert "Thời điểm không hợp lệ." in page


def test_an_operator_sees_only_their_commune_and_confirms_with_a_reason(
    panel: Panel, api: Api, loa: Loa
) -> None:
    bulletin_id = api.approved_bulletin()
    made = api.post(
        "/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON, THO_BINH]}
    ).json
    loa.clock.advance(5)  # type: ignore[attr-defined]
    panel.login("thoson", "loa-thoson")
    page = panel.get("/")
    assert "Xã Thọ Sơn" in page and "Xã Thọ Bình" not in page
    assert "chờ cán bộ xã xác nhận" in page
    page = panel.post(f"/broadcasts/{made[0]['id']}/confirm", {"aired": "no", "reason": ""})
    assert "Hãy ghi lý do không phát." in page
    page = panel.post(
        f"/broadcasts/{made[0]['id']}/confirm", {"aired": "no", "reason": "Mất điện cả thôn"}
    )
    assert "Đã lưu xác nhận." in page and "Mất điện cả thôn" in page
    history = panel.get(f"/broadcasts/{made[0]['id']}")
    assert '<td data-label="Người/thiết bị">Đài truyền thanh xã Thọ Sơn</td>' in history
    page = panel.post(f"/broadcasts/{made[1]['id']}/confirm", {"aired": "yes"})
    assert "Bạn không có quyền làm việc này." in page
    assert panel.client.get(f"/broadcasts/{made[1]['id']}").status_code == 404


def test_the_as_run_log_filters_and_exports_csv(panel: Panel, api: Api, loa: Loa) -> None:
    bulletin_id = api.approved_bulletin(topic="CCHC")
    api.post("/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON, THO_BINH]})
    panel.login("baocao", "loa-baocao")
    page = panel.get(f"/log?commune={THO_BINH}")
    assert "Xã Thọ Bình" in page and "Xã Thọ Sơn</td>" not in page
    r = panel.client.get(f"/log.csv?commune={THO_BINH}&topic=CCHC")
    lines = r.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert len(lines) == 2 and THO_BINH in lines[1]
    assert "Thời điểm không hợp lệ." in panel.get("/log?from=someday")


def test_the_broadcast_page_shows_deliveries_and_history(panel: Panel, api: Api) -> None:
    bulletin_id = api.approved_bulletin()
    (made,) = api.post("/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON]}).json
    panel.login("admin", "loa-admin")
    page = panel.get(f"/broadcasts/{made['id']}")
    assert "Lịch sử" in page and "∅" not in page and "đã lên lịch</span></td>" in page


def test_endpoints_are_registered_in_the_panel_with_a_one_time_token(panel: Panel) -> None:
    panel.login("admin", "loa-admin")
    page = panel.post("/endpoints", {"commune": THO_SON, "name": "Cụm loa thôn 1"})
    assert re.search(r"<code>loa_[\w-]+</code>", page)
    assert "Cụm loa thôn 1" in page and "mất kết nối" in page
    assert "<code>" not in panel.get("/endpoints")


def test_the_panel_speaks_english_on_request(panel: Panel) -> None:
    panel.login("admin", "loa-admin")
    panel.get("/lang/en")
    page = panel.get("/")
    assert "Broadcasts today" in page and "Lượt phát hôm nay" not in page


def test_a_form_without_its_csrf_token_is_refused(panel: Panel) -> None:
    panel.login("trungtam", "loa-trungtam")
    r = panel.client.post("/bulletins", data={"title": "x", "text": "y"})
    assert r.status_code == 400


def test_login_returns_to_the_page_asked_for_but_never_to_another_site(panel: Panel) -> None:
    r = panel.client.post(
        "/login?next=/log",
        data={"username": "admin", "password": "loa-admin", "csrf_token": panel.csrf()},
    )
    assert r.headers["Location"] == "/log"
    panel.client.post("/logout", data={"csrf_token": panel.csrf()})
    r = panel.client.post(
        "/login?next=//evil.example/x",
        data={"username": "admin", "password": "loa-admin", "csrf_token": panel.csrf()},
    )
    assert r.headers["Location"] == "/"


def add_endpoints(loa: Loa, commune: str, **per_state: int) -> None:
    """Agent endpoints in a commune, so many in each state (up=3, down=2, ...)."""
    with loa.transaction() as session:
        area = areas.commune_by_code(session, commune)
        for state, n in per_state.items():
            session.add_all(
                Endpoint(commune=area, name=f"Cụm {state} {i}", kind="agent", state=state,
                         active=True, created_at=loa.now())
                for i in range(n)
            )  # fmt: skip


def endpoint_rows(page: str) -> list[str]:
    """The endpoints table's rows, each as its HTML."""
    return page.split('<tr><td data-label="Xã">')[1:]


def test_the_endpoints_page_shows_a_hundred_problems_first_and_links_to_the_next(
    panel: Panel, loa: Loa
) -> None:
    add_endpoints(loa, THO_SON, up=130, late=3, down=5)
    add_endpoints(loa, THO_BINH, down=2)
    panel.login("trungtam", "loa-trungtam")
    rows = endpoint_rows(page := panel.get("/endpoints"))
    assert len(rows) == 100
    states = [re.search(r"Cụm (\w+) ", row).group(1) for row in rows]  # type: ignore[union-attr]
    assert states == ["down"] * 7 + ["late"] * 3 + ["up"] * 90
    assert 'href="/endpoints?page=2"' in page and 'rel="prev"' not in page
    rows = endpoint_rows(page := panel.get("/endpoints?page=2"))
    assert len(rows) == 40 and 'rel="next"' not in page and 'href="/endpoints?page=1"' in page
    page = panel.get(f"/endpoints?commune={THO_SON}&state=up")
    assert f'href="/endpoints?commune={THO_SON}&amp;state=up&amp;page=2"' in page


def test_the_endpoints_page_filters_by_state_and_commune(panel: Panel, loa: Loa) -> None:
    add_endpoints(loa, THO_SON, up=4, late=3)
    add_endpoints(loa, THO_BINH, late=2, down=1)
    panel.login("trungtam", "loa-trungtam")
    rows = endpoint_rows(panel.get("/endpoints?state=late"))
    assert len(rows) == 5 and all("chậm báo" in row for row in rows)
    rows = endpoint_rows(panel.get(f"/endpoints?state=late&commune={THO_BINH}"))
    assert len(rows) == 2 and all("Xã Thọ Bình" in row for row in rows)


def test_the_endpoints_page_counts_each_state_of_the_communes_shown(panel: Panel, loa: Loa) -> None:
    add_endpoints(loa, THO_SON, up=380, late=12, down=8)
    add_endpoints(loa, THO_BINH, up=1)
    panel.login("trungtam", "loa-trungtam")
    page = panel.get("/endpoints?state=down")
    for state, n in (("hoạt động", 381), ("chậm báo", 12), ("mất kết nối", 8)):
        assert f"{state} <strong>{n}</strong>" in page
    page = panel.get(f"/endpoints?commune={THO_BINH}")
    assert "hoạt động <strong>1</strong>" in page and "mất kết nối <strong>0</strong>" in page


def test_an_operator_sees_only_the_endpoints_of_their_own_commune(panel: Panel, loa: Loa) -> None:
    add_endpoints(loa, THO_SON, up=2)
    add_endpoints(loa, THO_BINH, up=5, down=1)
    panel.login("thoson", "loa-thoson")
    for path in ("/endpoints", f"/endpoints?commune={THO_BINH}"):
        page = panel.get(path)
        rows = endpoint_rows(page)
        assert len(rows) == 2 and all("Xã Thọ Sơn" in row for row in rows)
        assert "hoạt động <strong>2</strong>" in page and "mất kết nối <strong>0</strong>" in page
        assert "Xã Thọ Bình" not in page

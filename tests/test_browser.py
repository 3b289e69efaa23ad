"""The panel in a real browser, used the way its people use it.

Playwright drives Debian's Chromium against one `loa serve --demo --virtual-speakers`.
The tests share that server and run in order, like a day in the district: the centre
places a bulletin, the admin reads the audit log, the Thọ Sơn operator confirms the
demo's waiting broadcast on a phone, the report compiler exports, a citizen listens.
"""

from __future__ import annotations

import re
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from xml.etree import ElementTree

import pytest
import requests
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from scheduler.demo import DEMO_BULLETIN_TITLE, DEMO_USERS
from tests.conftest import THO_SON
from tests.test_e2e import Server

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)

PASSWORDS = {u.username: u.password for u in DEMO_USERS}
TITLE = "Lịch tiêm chủng mở rộng tháng 12"
TEXT = "Trạm y tế xã thông báo lịch tiêm chủng mở rộng cho trẻ em từ 7h30 - 11h sáng thứ Bảy."
PHONE: ViewportSize = {"width": 360, "height": 740}
OpenPage = Callable[..., Page]  # open_page(user=None, viewport=desktop)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("browser"))
    proc = srv.start("serve", "--demo", "--virtual-speakers", "--port", str(srv.port),
                     log="serve.log")  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(srv.url + "/login", timeout=1)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, (srv.data / "serve.log").read_text()
            time.sleep(0.2)
    yield srv
    proc.terminate()
    proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def open_page(browser: Browser, server: Server) -> Iterator[OpenPage]:
    """open_page(user=None, viewport=desktop): a fresh browser profile, logged in as user."""
    contexts = []

    def open_page(user: str | None = None, viewport: ViewportSize | None = None) -> Page:
        context = browser.new_context(
            base_url=server.url,
            viewport=viewport or {"width": 1280, "height": 800},
            locale="vi-VN",
            timezone_id="Asia/Ho_Chi_Minh",
        )
        contexts.append(context)
        page = context.new_page()
        if user:
            page.goto("/login")
            page.get_by_label("Tên đăng nhập").fill(user)
            page.get_by_label("Mật khẩu").fill(PASSWORDS[user])
            page.get_by_role("button", name="Đăng nhập").click()
            expect(page.get_by_role("button", name="Đăng xuất")).to_be_visible()
        return page

    yield open_page
    for context in contexts:
        context.close()


def test_the_centre_writes_approves_and_places_a_bulletin_in_the_morning_slot(
    open_page: OpenPage, shots: Path
) -> None:
    page = open_page("trungtam")
    page.get_by_role("navigation").get_by_role("link", name="Bản tin").click()
    page.get_by_label("Tiêu đề").fill(TITLE)
    page.get_by_label("Nội dung").fill(TEXT)
    page.get_by_label("Chủ đề").first.fill("Y tế")
    page.get_by_role("button", name="Tạo", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(TITLE)
    # The spoken form is shown beside the original.
    expect(page.get_by_text("bảy giờ ba mươi đến mười một giờ")).to_be_visible()

    page.get_by_role("button", name="Duyệt").click()
    expect(page.get_by_text("Trạng thái: đã duyệt")).to_be_visible()

    page.get_by_role("link", name="Đặt lịch phát").click()
    chosen = page.get_by_label("Bản tin").first.evaluate("s => s.selectedOptions[0].text")
    assert chosen.startswith(TITLE)
    page.get_by_label("Chọn từng xã").check()
    page.get_by_label("Xã Thọ Sơn", exact=True).check()
    page.get_by_label("Buổi sáng").check()
    # One morning: the first day offered (tomorrow) to that same day.
    page.get_by_label("Đến ngày").fill(page.get_by_label("Từ ngày").input_value())
    page.get_by_role("button", name="Đặt lịch", exact=True).click()

    # The week calendar opens on that week; the bulletin sits in the morning slot.
    expect(page.get_by_role("heading", level=1)).to_contain_text("Lịch phát", timeout=20_000)
    morning = page.locator(".cal-cell", has_text="Buổi sáng").filter(has_text=TITLE)
    expect(morning).to_have_count(1)
    expect(morning).to_contain_text("1 xã")
    page.get_by_role("combobox", name=re.compile("^Xã")).select_option(label="Xã Thọ Sơn")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Xã Thọ Sơn")
    expect(page.locator(".cal-cell", has_text="Buổi sáng").filter(has_text=TITLE)).to_have_count(1)
    page.screenshot(path=shots / "centre-calendar.png", full_page=True)


def test_the_admin_sees_the_centres_actions_in_the_audit_log(open_page: OpenPage) -> None:
    page = open_page("admin")
    page.get_by_role("link", name="Nhật ký thao tác").click()
    expect(page).to_have_url(re.compile(r"/audit$"))
    # The filter takes the actor as the log writes it (its placeholder shows one).
    page.get_by_label("Ai", exact=True).fill("user:trungtam")
    page.get_by_role("button", name="Lọc").click()
    rows = page.locator("tbody tr")
    expect(rows.filter(has_text=TITLE)).to_have_count(1)  # created, with its title
    for action in ("duyệt", "xếp lịch"):  # approved, placed
        expect(rows.filter(has_text=action).first).to_be_visible()

    page.get_by_role("navigation").get_by_role("link", name="Người dùng").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Người dùng")
    for user in PASSWORDS:
        expect(page.get_by_text(user, exact=True)).to_be_visible()
    expect(page.get_by_label("Tên đăng nhập")).to_be_visible()  # the new-user form


def on_phone_without_sideways_scroll(page: Page) -> None:
    assert page.viewport_size == PHONE
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{page.url} scrolls sideways: {width} px wide on a 360 px phone"


def test_the_tho_son_operator_confirms_on_a_phone(open_page: OpenPage, shots: Path) -> None:
    page = open_page("thoson", PHONE)
    page.get_by_role("link", name="Hôm nay").click()
    waiting = page.locator("section", has=page.get_by_role("heading", name="Chờ xác nhận"))
    expect(waiting).to_contain_text(DEMO_BULLETIN_TITLE)
    on_phone_without_sideways_scroll(page)
    page.screenshot(path=shots / "operator-today.png", full_page=True)
    expect(waiting.get_by_role("button", name="Đã phát")).to_be_in_viewport()

    waiting.get_by_role("button", name="Đã phát").click()
    expect(page.get_by_role("status")).to_contain_text("Đã lưu xác nhận")
    expect(page.get_by_role("heading", name="Chờ xác nhận")).to_have_count(0)
    on_phone_without_sideways_scroll(page)

    page.get_by_role("link", name=DEMO_BULLETIN_TITLE).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(DEMO_BULLETIN_TITLE)
    expect(page.locator("main")).to_contain_text("đã phát")
    on_phone_without_sideways_scroll(page)

    page.get_by_role("link", name="Nhật ký phát").click()
    expect(page.locator("main")).to_contain_text(DEMO_BULLETIN_TITLE)
    on_phone_without_sideways_scroll(page)

    page.get_by_role("link", name="Thiết bị").click()
    expect(page.locator("main")).to_contain_text("Xã Thọ Sơn")
    on_phone_without_sideways_scroll(page)


def test_the_report_compiler_downloads_the_xlsx_and_the_docx(
    open_page: OpenPage, shots: Path
) -> None:
    page = open_page("baocao")
    page.get_by_role("navigation").get_by_role("link", name="Báo cáo").click()
    page.get_by_role("link", name=f"Cả năm {date.today().year}").click()
    expect(page.locator("main")).to_contain_text(f"01/01/{date.today().year}")
    page.screenshot(path=shots / "reports.png", full_page=True)
    for button, suffix, member in (
        ("Excel (XLSX)", ".xlsx", "xl/workbook.xml"),
        ("Báo cáo (DOCX)", ".docx", "word/document.xml"),
    ):
        page.get_by_role("button", name=button).click()  # a background job and its page
        with page.expect_download() as download:  # the page reloads until the link is there
            page.get_by_role("link", name=re.compile("^Tải về")).click(timeout=60_000)
        page.get_by_role("link", name="← Báo cáo").click()  # back to the same year
        assert download.value.suggested_filename.endswith(suffix)
        saved = Path(download.value.path())
        assert saved.stat().st_size > 0
        with zipfile.ZipFile(saved) as package:
            assert member in package.namelist()


def test_a_citizen_plays_what_tho_son_aired_and_finds_the_podcast(open_page: OpenPage) -> None:
    page = open_page(viewport=PHONE)  # a citizen's phone
    page.goto(f"/c/{THO_SON}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Xã Thọ Sơn")
    expect(page.get_by_role("button", name="Đăng xuất")).to_have_count(0)
    item = page.locator("li", has_text=DEMO_BULLETIN_TITLE)  # confirmed by the operator
    expect(item).to_have_count(1)
    on_phone_without_sideways_scroll(page)
    audio = page.request.get(item.locator("audio").get_attribute("src") or "")
    assert audio.ok and audio.headers["content-type"] == "audio/mpeg" and audio.body()
    assert TITLE not in page.locator("main").inner_text()  # placed, not aired yet

    feed_url = page.get_by_role("link", name="podcast").get_attribute("href") or ""
    feed = page.request.get(feed_url)
    assert feed.ok
    rss = ElementTree.fromstring(feed.body())
    assert rss.tag == "rss" and rss.get("version") == "2.0"
    titles = [t.text for t in rss.iter("title")]
    assert DEMO_BULLETIN_TITLE in titles and TITLE not in titles
    enclosure = rss.find("channel/item/enclosure")
    assert enclosure is not None and enclosure.get("type") == "audio/mpeg"

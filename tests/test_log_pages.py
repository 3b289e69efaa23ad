"""The as-run log page shows 100 broadcasts a page, with a count and page links that keep
the filter; its CSV export still gives the whole filter."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from scheduler import areas, asrun, bulletins, service
from scheduler.clock import ManualClock
from scheduler.context import Loa
from scheduler.models import Priority
from tests.conftest import ADMIN, CENTRE, THO_SON
from tests.test_panel import Panel


@pytest.fixture
def year_of_slots(loa: Loa) -> list[str]:
    """One bulletin in all 34 communes at four times: 136 broadcasts (4 in Thọ Sơn)."""
    with loa.transaction() as s:
        b = bulletins.create_bulletin(
            s, CENTRE, title="Lịch tiếp công dân", text="UBND xã tiếp công dân vào thứ Năm.",
            topic="CCHC", priority=Priority.NORMAL, now=loa.now(), max_chars=20000,
        )  # fmt: skip
        b.engine = "espeak"
        bulletins.approve(s, ADMIN, b, loa.now())
        codes = [c.code for c in areas.communes(s)]
    for hours in (1, 2, 3, 4):
        service.schedule_bulletin(loa, CENTRE, b.id, codes, loa.now() + timedelta(hours=hours))
    return codes


def rows(page: str) -> int:
    return page.count('<a href="/broadcasts/')


def test_the_log_shows_100_rows_a_page_with_a_count_and_links(
    client: FlaskClient, year_of_slots: list[str]
) -> None:
    panel = Panel(client)
    panel.login("trungtam", "loa-trungtam")
    first = panel.get("/log?page=1")
    assert rows(first) == 100
    assert re.search(r'id="log-count">1–100 / 136<', first)
    assert "/log?to=2026-11-26&amp;page=2" in first  # the default filter: up to today
    second = panel.get("/log?page=2")
    assert rows(second) == 36 and "101–136 / 136" in second
    assert "/log?to=2026-11-26&amp;page=1" in second
    assert rows(panel.get("/log")) == 36  # opened without a page: its latest
    assert rows(panel.get("/log?page=99")) == 36  # past the end: the last page
    assert rows(panel.get("/log?page=x")) == 100


def test_the_log_opens_up_to_today_on_its_latest_page(
    client: FlaskClient, loa: Loa, clock: ManualClock, year_of_slots: list[str]
) -> None:
    """What aired most recently first in view; tomorrow's plan is the week's, not the
    log's, until the user asks for later dates."""
    with loa.transaction() as s:
        b = bulletins.create_bulletin(
            s, CENTRE, title="Thông báo ngày mai", text="Ngày mai cắt điện.", topic="Điện",
            priority=Priority.NORMAL, now=loa.now(), max_chars=20000,
        )  # fmt: skip
        bulletins.approve(s, ADMIN, b, loa.now())
    service.schedule_bulletin(loa, CENTRE, b.id, [THO_SON], loa.now() + timedelta(days=1))
    clock.advance(5 * 3600)  # the four times of today have passed
    panel = Panel(client)
    panel.login("trungtam", "loa-trungtam")
    page = panel.get("/log")
    assert "Thông báo ngày mai" not in page
    assert 'name="to" value="2026-11-26"' in page  # the filter says so
    assert re.search(r'id="log-count">101–136 / 136<', page)
    assert "Thông báo ngày mai" not in panel.get(f"/log?commune={THO_SON}")  # no dates: the same
    later = panel.get("/log?to=2026-11-27")
    assert "Thông báo ngày mai" in later and "/ 137<" in later
    assert "Thông báo ngày mai" in panel.get("/log?from=2026-11-27")


def test_pages_past_the_middle_read_from_the_end_hold_the_same_rows(
    loa: Loa, year_of_slots: list[str]
) -> None:
    f = asrun.make_filter(loa.settings.timezone, None, None)
    with loa.transaction() as s:
        every = [b.id for b in asrun.query(s, CENTRE, f, deliveries=False)]
        assert len(every) == 136
        for offset, limit in ((0, 50), (50, 50), (100, 50), (70, 30), (130, 30), (136, 10)):
            page = asrun.query(s, CENTRE, f, False, offset=offset, limit=limit, total=136)
            assert [b.id for b in page] == every[offset : offset + limit], (offset, limit)


def test_page_links_keep_the_filter_and_the_csv_exports_all_of_it(
    client: FlaskClient, year_of_slots: list[str]
) -> None:
    panel = Panel(client)
    panel.login("trungtam", "loa-trungtam")
    page = panel.get("/log?status=scheduled&topic=CCHC&page=1")
    assert "/ 136<" in page
    links = set(re.findall(r'href="(/log\?[^"]*page=2[^"]*)"', page))
    assert links and all("status=scheduled" in x and "topic=CCHC" in x for x in links)
    one = panel.get(f"/log?commune={THO_SON}")
    assert rows(one) == 4 and "1–4 / 4" in one and "page=" not in one
    assert "0</p>" in panel.get("/log?status=played")
    r = client.get("/log.csv?status=scheduled")
    assert len(list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))) == 1 + 136


def test_an_operator_counts_only_their_commune(
    client: FlaskClient, year_of_slots: list[str]
) -> None:
    panel = Panel(client)
    panel.login("thoson", "loa-thoson")
    page = panel.get("/log")
    assert rows(page) == 4 and "1–4 / 4" in page


def test_a_commune_is_found_by_its_code_with_the_other_filters(
    client: FlaskClient, year_of_slots: list[str]
) -> None:
    panel = Panel(client)
    panel.login("trungtam", "loa-trungtam")
    page = panel.get(f"/log?commune={THO_SON}&status=scheduled&topic=CCHC")
    assert rows(page) == 4 and "1–4 / 4" in page
    assert "Thọ Bình" not in page.split('id="log-count"')[1]
    assert rows(panel.get(f"/log?commune={THO_SON}&status=played")) == 0
    assert 'id="log-count">0<' in panel.get("/log?commune=00000")

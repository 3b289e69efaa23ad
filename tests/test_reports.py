"""Reports for the 6-month and annual reports: the as-run table as CSV and XLSX in
Vietnamese, the DOCX in the Nghị định 30/2020 layout (checked with python-docx and by
LibreOffice), the panel's reports page and `loa export`."""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
import shutil
import sqlite3
import subprocess
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import docx
import openpyxl
import pytest
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt
from flask.testing import FlaskClient
from sqlalchemy import select

from scheduler import areas, asrun, audit, bulletins, reports, service, xlsx
from scheduler.auth import Actor
from scheduler.clock import ManualClock
from scheduler.context import Loa, build_loa
from scheduler.models import AudioAsset, Priority, Role
from scheduler.report_docx import MISSED_LIMIT, docx_bytes
from scheduler.settings import ReportSettings, Settings
from tests.conftest import ADMIN, CENTRE, THO_BINH, THO_SON, THO_TIEN, Api, later, make_settings
from tests.test_cli import run
from tests.test_panel import Panel

APRIL = datetime(2026, 4, 20, 1, 0, tzinfo=UTC)  # 08:00 in Triệu Sơn
JULY = datetime(2026, 7, 10, 1, 0, tzinfo=UTC)
H1_2026 = reports.Period(date(2026, 1, 1), date(2026, 6, 30))
RELAY_SECONDS = 900
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
OPERATOR_NAME = "Đài truyền thanh xã Thọ Sơn"  # the demo user thoson
CALC = Path("/usr/lib/libreoffice/program/libsclo.so")  # LibreOffice Calc (Debian)


def _bulletin(loa: Loa, title: str, topic: str, text: str) -> int:
    with loa.transaction() as s:
        b = bulletins.create_bulletin(
            s, CENTRE, title=title, text=text, topic=topic, priority=Priority.NORMAL,
            now=loa.now(), max_chars=20000,
        )  # fmt: skip
        b.engine = "espeak"  # never the network, even outside the no_internet fixture
        bulletins.approve(s, ADMIN, b, loa.now())
        return b.id


def _go(clock: ManualClock, month: int, day: int = 20) -> None:
    clock.advance((datetime(2026, month, day, 1, 0, tzinfo=UTC) - clock.now()).total_seconds())


def air_half_year(loa: Loa, clock: ManualClock) -> None:
    """April: CCHC aired in Thọ Sơn (its operator said so), not in Thọ Bình (power cut).
    May: the provincial news relayed for 15 minutes in Thọ Sơn; CCHC in Thọ Tiến cancelled.
    June: CCHC not aired in Thọ Sơn (broken speaker). Then the clock goes to 10 July."""
    cchc = _bulletin(loa, "Lịch tiếp công dân", "CCHC", "UBND xã tiếp công dân vào thứ Năm.")
    relay = service.create_relay(
        loa, CENTRE, title="Tiếp sóng Đài tỉnh", stream_url="http://127.0.0.1:9/tinh.mp3",
        seconds=RELAY_SECONDS, topic="Thời sự",
    ).id  # fmt: skip
    service.approve_bulletin(loa, ADMIN, relay)
    with loa.transaction() as s:
        operator = Actor("user:thoson", Role.OPERATOR, areas.commune_by_code(s, THO_SON).id)

    def schedule(bulletin_id: int, communes: list[str]) -> list[int]:
        at = loa.now() + timedelta(seconds=60)
        made = service.schedule_bulletin(loa, CENTRE, bulletin_id, communes, at)
        clock.advance(120)
        return [b.id for b in made]

    son, binh = schedule(cchc, [THO_SON, THO_BINH])
    service.confirm_broadcast(loa, operator, son, aired=True, reason=None, at=None)
    service.confirm_broadcast(loa, CENTRE, binh, aired=False, reason="Mất điện", at=None)
    _go(clock, 5)
    (son,) = schedule(relay, [THO_SON])
    made = service.schedule_bulletin(loa, CENTRE, cchc, [THO_TIEN], loa.now() + timedelta(hours=1))
    service.cancel_broadcast(loa, CENTRE, made[0].id)
    service.confirm_broadcast(loa, operator, son, aired=True, reason=None, at=None)
    _go(clock, 6)
    (son,) = schedule(cchc, [THO_SON])
    service.confirm_broadcast(loa, operator, son, aired=False, reason="Loa hỏng", at=None)


@pytest.fixture(scope="module")
def seeded_db(seeded_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo district after January–June 2026 (air_half_year), copied by each test."""
    return half_year_db(seeded_db, tmp_path_factory)


def half_year_db(seeded_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("half-year")
    shutil.copyfile(seeded_db, data / "loa.db")
    clock = ManualClock(APRIL)
    loa = build_loa(make_settings(data), clock=clock)
    try:
        air_half_year(loa, clock)
    finally:
        loa.close()
    return data / "loa.db"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(JULY)


@pytest.fixture
def speech(loa: Loa) -> float:
    """Seconds of the CCHC bulletin's audio."""
    with loa.transaction() as s:
        seconds: float = s.scalar(
            select(AudioAsset.duration_seconds).where(AudioAsset.stream_url.is_(None))
        )
        return seconds


def minutes(seconds: float) -> str:
    """As the report writes minutes: one decimal, a decimal comma."""
    return f"{round(seconds / 60, 1):.1f}".replace(".", ",")


def _report(loa: Loa, actor: Actor = CENTRE, period: reports.Period = H1_2026) -> reports.Report:
    tz = loa.settings.timezone
    with loa.transaction() as s:
        return reports.build(s, actor, reports.period_filter(tz, period), tz, loa.now())


# --- CSV and XLSX -------------------------------------------------------------------------


def test_the_csv_has_vietnamese_headers_and_values_local_times_and_a_bom(
    api: Api, speech: float
) -> None:
    r = api.get("/reports/broadcasts.csv?from=2026-01-01&to=2026-06-30")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.data.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert list(rows[0])[:3] == ["Mã lượt phát", "Mã xã", "Xã"]
    assert [(x["Xã"], x["Trạng thái"]) for x in rows] == [
        ("Xã Thọ Sơn", "đã phát"),
        ("Xã Thọ Bình", "không phát"),
        ("Xã Thọ Sơn", "đã phát"),
        ("Xã Thọ Tiến", "đã hủy"),
        ("Xã Thọ Sơn", "không phát"),
    ]
    first = rows[0]
    assert first["Giờ phát theo lịch"] == "20/04/2026 08:01:00"
    assert first["Bắt đầu"] == "20/04/2026 08:02:00"
    assert first["Mức ưu tiên"] == "thông thường" and first["Loại bản tin"] == "đọc văn bản"
    assert first["Người xác nhận"] == OPERATOR_NAME and first["Xác nhận qua"] == "cán bộ xã"
    assert float(first["Thời lượng (phút)"]) == round(speech / 60, 2)
    assert rows[1]["Lý do"] == "Mất điện"
    relay = rows[2]
    assert relay["Loại bản tin"] == "tiếp sóng" and relay["Số phút đã phát"] == "15.0"

    en = api.get("/reports/broadcasts.csv?from=2026-01-01&to=2026-06-30&lang=en")
    rows = list(csv.DictReader(io.StringIO(en.data.decode("utf-8-sig"))))
    assert rows[0]["Commune code"] == THO_SON and rows[0]["Status"] == "played"
    assert rows[0]["Scheduled at"] == "20/04/2026 08:01:00"


def test_the_xlsx_has_real_dates_a_summary_per_commune_and_topic_and_filtered_headers(
    api: Api, speech: float, loa: Loa
) -> None:
    r = api.get("/reports/broadcasts.xlsx?from=2026-01-01&to=2026-06-30")
    assert r.status_code == 200 and r.mimetype == XLSX
    book = openpyxl.load_workbook(io.BytesIO(r.data))
    assert book.sheetnames == ["Nhật ký phát", "Tổng hợp"]
    log, summary = book["Nhật ký phát"], book["Tổng hợp"]
    for sheet in (log, summary):
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == sheet.dimensions
    head = [c.value for c in log[1]]
    row = dict(zip(head, [c.value for c in log[2]], strict=True))
    assert row["Giờ phát theo lịch"] == datetime(2026, 4, 20, 8, 1)
    when = log.cell(2, head.index("Giờ phát theo lịch") + 1)
    assert when.is_date and when.number_format == "dd/mm/yyyy hh:mm:ss"
    assert row["Trạng thái"] == "đã phát" and row["Người xác nhận"] == OPERATOR_NAME
    assert log.max_row == 6  # the header and five broadcasts
    totals = {(r[0], r[1]): r[2:] for r in summary.iter_rows(min_row=2, values_only=True)}
    # Scheduled = played + partly + not aired + pending; minutes to the hundredth, so that
    # a column's sum is the period's.
    assert totals == {
        ("Xã Thọ Bình", "CCHC"): (1, 0, 0, 1, 0, 0, 0.0),
        ("Xã Thọ Sơn", "CCHC"): (2, 1, 0, 1, 0, 0, round(speech / 60, 2)),
        ("Xã Thọ Sơn", "Thời sự"): (1, 1, 0, 0, 0, 0, 15.0),
        ("Xã Thọ Tiến", "CCHC"): (0, 0, 0, 0, 1, 0, 0.0),
    }
    assert [c.value for c in summary[1]][6:8] == ["Đã hủy", "Chưa có kết quả"]
    with loa.transaction() as s:
        (entry, *_) = audit.entries(s, ADMIN)
        assert (entry.action, entry.detail) == ("export", "xlsx 2026-01-01..2026-06-30")


def test_the_xlsx_writer_escapes_text_drops_what_xml_forbids_and_keeps_columns() -> None:
    when = datetime(2026, 12, 31, 23, 59, 59)
    rows = [
        [1, "a & b <c> \x01\x0bd", when, None, 0.73, " lead", True],
        [2, None, None, "x\r\ny", float("nan"), "Thọ Sơn", False],
    ]
    out = io.BytesIO()
    sheets = [xlsx.Sheet("Nhật ký 'phát'", list("ABCDEFG"), iter(rows), {1: 30}),
              xlsx.Sheet("Tổng hợp", ["x"], [])]  # fmt: skip
    assert xlsx.write(out, sheets, reports.XLSX_TIME) == [2, 0]
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist()[0] == "[Content_Types].xml"
        for info in zf.infolist():
            ElementTree.fromstring(zf.read(info))  # well-formed XML
            assert info.compress_type == zipfile.ZIP_DEFLATED
    book = openpyxl.load_workbook(out)
    log = book["Nhật ký 'phát'"]
    assert [[c.value for c in r] for r in log.iter_rows(min_row=2)] == [
        [1, "a & b <c> d", when, None, 0.73, " lead", True],
        [2, None, None, "x\r\ny", "nan", "Thọ Sơn", False],
    ]
    assert log.auto_filter.ref == "A1:G3" and log.freeze_panes == "A2" and log["A1"].font.b
    assert log.column_dimensions["B"].width == 30
    assert book["Tổng hợp"].auto_filter.ref == "A1:A1"
    assert xlsx.column(1) == "A" and xlsx.column(18) == "R" and xlsx.column(28) == "AB"


@pytest.mark.skipif(
    shutil.which("soffice") is None or not CALC.exists(),
    reason="LibreOffice Calc is not installed (apt-get install libreoffice-calc-nogui)",
)
def test_the_xlsx_opens_in_libreoffice_calc(loa: Loa, tmp_path: Path) -> None:
    path = tmp_path / "nhat-ky.xlsx"
    path.write_bytes(reports.xlsx_bytes(_report(loa)))
    out = subprocess.run(
        ["soffice", f"-env:UserInstallation=file://{tmp_path}/lo", "--headless",
         "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76", "--outdir", str(tmp_path),
         str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0 and (tmp_path / "nhat-ky.csv").exists(), out.stderr
    rows = list(csv.reader(io.StringIO((tmp_path / "nhat-ky.csv").read_text("utf-8"))))
    assert rows[0][:3] == ["Mã lượt phát", "Mã xã", "Xã"] and len(rows) == 6
    assert rows[1][2] == "Xã Thọ Sơn" and rows[1][8] == "20/04/2026 08:01:00"


def test_an_operator_exports_only_their_own_commune(
    api_for: Callable[..., Api],
) -> None:
    operator = api_for("operator", THO_SON)
    r = operator.get("/reports/broadcasts.csv?from=2026-01-01&to=2026-06-30")
    rows = list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert {x["Mã xã"] for x in rows} == {THO_SON} and len(rows) == 3
    r = operator.get(f"/reports/report.docx?from=2026-01-01&to=2026-06-30&commune={THO_BINH}")
    assert (r.status_code, r.json["error"]) == (403, "forbidden")
    r = operator.get("/reports/report.docx?from=2026-01-01&to=2026-06-30")
    assert r.status_code == 200
    text = "\n".join(p.text for p in docx.Document(io.BytesIO(r.data)).paragraphs)
    assert "tại Xã Thọ Sơn" in text


# --- DOCX ---------------------------------------------------------------------------------


def _table_rows(table: docx.table.Table) -> list[list[str]]:
    return [[c.text for c in row.cells] for row in table.rows]


def test_the_docx_is_laid_out_per_decree_30_and_its_tables_match_the_as_run_log(
    api: Api, speech: float
) -> None:
    r = api.get("/reports/report.docx")  # default: the last full half-year
    assert r.status_code == 200 and r.mimetype == DOCX
    doc = docx.Document(io.BytesIO(r.data))
    section = doc.sections[0]
    mm = {k: round(getattr(section, k).mm) for k in ("page_width", "page_height", "top_margin",
                                                      "bottom_margin", "left_margin",
                                                      "right_margin")}  # fmt: skip
    assert (mm["page_width"], mm["page_height"]) == (210, 297)  # A4
    assert 20 <= mm["top_margin"] <= 25 and 20 <= mm["bottom_margin"] <= 25
    assert 30 <= mm["left_margin"] <= 35 and 15 <= mm["right_margin"] <= 20
    normal = doc.styles["Normal"].font
    assert normal.name == "Times New Roman" and Pt(13) <= normal.size <= Pt(14)
    # Page numbers centred in the top margin, in Arabic numerals, none on the first page.
    assert section.different_first_page_header_footer
    number = section.header.paragraphs[0]
    assert 'w:instr="PAGE"' in number._p.xml and number.alignment == WD_ALIGN_PARAGRAPH.CENTER
    assert not section.first_page_header.paragraphs[0].text
    chart = next(p for p in doc.paragraphs if "graphicData" in p._p.xml)
    assert chart.paragraph_format.keep_with_next  # with its caption on one page
    runs = [run for p in doc.paragraphs for run in p.runs if run.text]  # not the chart's
    runs += [run for t in doc.tables for c in t._cells for p in c.paragraphs for run in p.runs]
    assert {run.font.name for run in runs} == {"Times New Roman"}
    assert {str(run.font.color.rgb) for run in runs} == {"000000"}

    header = doc.tables[0]
    parent, issuer, _ = header.cell(0, 0).paragraphs
    assert parent.text == "UBND HUYỆN TRIỆU SƠN" and not parent.runs[0].bold
    assert issuer.text == "TRUNG TÂM VĂN HÓA, THÔNG TIN, THỂ THAO VÀ DU LỊCH"
    assert issuer.runs[0].bold and Pt(12) <= issuer.runs[0].font.size <= Pt(13)
    nation, motto, rule = header.cell(0, 1).paragraphs
    assert nation.text == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" and nation.runs[0].bold
    assert motto.text == "Độc lập - Tự do - Hạnh phúc" and motto.runs[0].bold
    assert Pt(13) <= motto.runs[0].font.size <= Pt(14)
    assert "w:pBdr" in rule._p.xml and not rule.text  # the rule beneath the motto
    assert re.fullmatch(r"Số:\s+/BC-TTVHTTDL", header.cell(1, 0).text)
    place = header.cell(1, 1).paragraphs[0]
    assert place.text == "Triệu Sơn, ngày 10 tháng 7 năm 2026" and place.runs[0].italic

    texts = [p.text for p in doc.paragraphs]
    title = next(p for p in doc.paragraphs if p.text == "BÁO CÁO")
    assert title.runs[0].bold
    assert texts[texts.index("BÁO CÁO") + 1] == (
        "Kết quả phát bản tin trên hệ thống truyền thanh cơ sở "
        "từ ngày 01/01/2026 đến ngày 30/06/2026"
    )
    aired = minutes(speech + RELAY_SECONDS)
    assert "- Tổng số buổi phát theo lịch: 4 buổi;" in texts
    assert "- Đã phát: 2 buổi (50,0%);" in texts
    assert "- Không phát (bị lỡ, lỗi thiết bị): 2 buổi;" in texts
    assert "- Đã hủy: 1 buổi;" in texts
    assert f"- Tổng thời lượng đã phát: {aired} phút." in texts
    assert "- Mất điện: 1 buổi;" in texts and "- Loa hỏng: 1 buổi;" in texts

    communes, topics, missed = (_table_rows(t) for t in doc.tables[1:4])
    assert communes[0] == ["STT", "Xã, thị trấn", "Theo lịch", "Đã phát", "Một phần",
                           "Không phát", "Số phút"]  # fmt: skip
    assert len(communes) == 1 + 34 + 1  # every commune of the district, and the total
    by_name = {row[1]: row[2:] for row in communes[1:]}
    assert by_name["Xã Thọ Sơn"] == ["3", "2", "0", "1", aired]
    assert by_name["Xã Thọ Bình"] == ["1", "0", "0", "1", "0,0"]
    assert by_name["Xã Thọ Tiến"] == ["0", "0", "0", "0", "0,0"]
    assert communes[-1][1:] == ["Tổng cộng", "4", "2", "0", "2", aired]
    assert [row[1:] for row in topics[1:]] == [
        ["CCHC", "3", "1", "0", "2", minutes(speech)],
        ["Thời sự", "1", "1", "0", "0", "15,0"],
        ["Tổng cộng", "4", "2", "0", "2", aired],
    ]
    assert [row[1:] for row in missed[1:]] == [
        ["20/04/2026 08:01", "Xã Thọ Bình", "Lịch tiếp công dân", "không phát", "Mất điện"],
        ["20/06/2026 08:01", "Xã Thọ Sơn", "Lịch tiếp công dân", "không phát", "Loa hỏng"],
    ]
    assert len(doc.inline_shapes) == 1  # the chart per month
    signature = doc.tables[-1]
    assert signature.cell(0, 0).paragraphs[0].text == "Nơi nhận:"
    assert signature.cell(0, 0).paragraphs[0].runs[0].font.size == Pt(12)
    assert signature.cell(0, 1).paragraphs[0].text == "GIÁM ĐỐC"


def test_broadcasts_still_to_come_have_a_column_of_their_own_so_the_docx_adds_up(
    api: Api, loa: Loa
) -> None:
    bulletin = api.approved_bulletin()
    made = {"bulletin_id": bulletin, "communes": [THO_SON], "at": later(loa, 3600)}
    assert api.post("/broadcasts", made).status_code == 201
    r = api.get("/reports/report.docx?from=2026-07-01&to=2026-07-31")
    communes = _table_rows(docx.Document(io.BytesIO(r.data)).tables[1])
    assert communes[0] == ["STT", "Xã, thị trấn", "Theo lịch", "Đã phát", "Một phần",
                           "Không phát", "Chưa có kết quả", "Số phút"]  # fmt: skip
    assert communes[-1][1:] == ["Tổng cộng", "1", "0", "0", "0", "1", "0,0"]


@pytest.mark.skipif(
    shutil.which("soffice") is None,
    reason="LibreOffice is not installed (apt-get install libreoffice-writer-nogui)",
)
def test_the_docx_opens_in_libreoffice_as_a4_pages(loa: Loa, tmp_path: Path) -> None:
    report = _report(loa)
    path = tmp_path / "bao-cao.docx"
    path.write_bytes(docx_bytes(report, loa.settings.report, date(2026, 7, 10)))
    out = subprocess.run(
        ["soffice", f"-env:UserInstallation=file://{tmp_path}/lo", "--headless",
         "--convert-to", "pdf", "--outdir", str(tmp_path), str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    pdf = (tmp_path / "bao-cao.pdf").read_bytes()
    pages = re.search(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", pdf)
    assert pages and int(pages.group(1)) >= 2, pdf[:300]
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)", pdf)
    assert box and (round(float(box.group(1))), round(float(box.group(2)))) == (595, 842)


def test_an_empty_period_gives_a_valid_report_that_says_there_was_nothing(loa: Loa) -> None:
    report = _report(loa, period=reports.whole_year(2025))
    assert report.empty and report.total.scheduled == 0
    doc = docx.Document(io.BytesIO(docx_bytes(report, ReportSettings(), date(2026, 1, 5))))
    texts = [p.text for p in doc.paragraphs]
    assert "Trong kỳ báo cáo không có buổi phát nào." in texts
    assert "BÁO CÁO" in texts and len(doc.tables) == 2  # the header and the signature
    assert doc.tables[0].cell(1, 1).text == "Triệu Sơn, ngày 05 tháng 01 năm 2026"
    book = openpyxl.load_workbook(io.BytesIO(reports.xlsx_bytes(report)))
    assert book["Nhật ký phát"].max_row == 1


def test_a_long_list_of_missed_broadcasts_is_capped_with_a_count() -> None:
    report = reports.Report(H1_2026, "vi")
    report.rows = [[]]  # not empty
    report.total.scheduled = report.total.missed = MISSED_LIMIT + 12
    report.missed = [
        reports.Missed(datetime(2026, 3, 1, 6), "Xã Thọ Sơn", "Tin", "không phát", "Mất điện")
    ] * (MISSED_LIMIT + 12)
    report.reasons = [("Mất điện", MISSED_LIMIT + 12)]
    doc = docx.Document(io.BytesIO(docx_bytes(report, ReportSettings(), date(2026, 7, 1))))
    texts = [p.text for p in doc.paragraphs]
    assert "- Mất điện: 62 buổi;" in texts
    assert "… và 12 buổi khác (chi tiết trong tệp Excel nhật ký phát)." in texts
    assert len(doc.tables[-2].rows) == 1 + MISSED_LIMIT


def test_report_settings_come_from_loa_report_variables(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        LOA_REPORT_ISSUER="UBND XÃ THỌ SƠN",
        LOA_REPORT_PARENT_BODY="UBND HUYỆN TRIỆU SƠN",
        LOA_REPORT_SIGNER_TITLE="CHỦ TỊCH",
        LOA_REPORT_SIGNER_NAME="Lê Văn A",
        LOA_REPORT_NUMBER_PREFIX="BC-UBND",
        LOA_REPORT_RECIPIENTS="UBND huyện; Lưu: VT",
    ).report
    assert settings.issuer == "UBND XÃ THỌ SƠN" and settings.signer_name == "Lê Văn A"
    assert settings.recipients == ("UBND huyện", "Lưu: VT")
    assert make_settings(tmp_path).report == ReportSettings()
    report = reports.Report(H1_2026, "vi")
    doc = docx.Document(io.BytesIO(docx_bytes(report, settings, date(2026, 7, 1))))
    assert doc.tables[0].cell(1, 0).text.endswith("/BC-UBND")
    signature = [p.text for p in doc.tables[-1].cell(0, 1).paragraphs]
    assert signature[0] == "CHỦ TỊCH" and signature[-1] == "Lê Văn A"
    assert [p.text for p in doc.tables[-1].cell(0, 0).paragraphs] == [
        "Nơi nhận:",
        "- UBND huyện;",
        "- Lưu: VT.",
    ]


def test_periods_and_dates_are_written_the_vietnamese_way() -> None:
    assert reports.vi_date(date(2026, 11, 27)) == "ngày 27 tháng 11 năm 2026"
    assert reports.vi_date(date(2026, 2, 3)) == "ngày 03 tháng 02 năm 2026"
    assert reports.last_full_half_year(date(2026, 11, 27)) == H1_2026
    assert reports.last_full_half_year(date(2026, 3, 1)) == reports.half_year(2025, 2)
    assert reports.parse_period("2026-01-01", "2026-12-31", date(2026, 3, 1)) == (
        reports.whole_year(2026)
    )
    with pytest.raises(Exception, match="ends before"):
        reports.parse_period("2026-06-01", "2026-01-01", date(2026, 3, 1))


# --- panel and CLI ------------------------------------------------------------------------


def test_the_reports_page_shows_the_last_half_year_with_charts_and_downloads(
    client: FlaskClient,
) -> None:
    panel = Panel(client)
    panel.login("baocao", "loa-baocao")
    page = panel.get("/reports")
    assert 'name="from" value="2026-01-01"' in page and 'name="to" value="2026-06-30"' in page
    assert "6 tháng đầu năm 2026" in page and "Cả năm 2025" in page
    assert page.count('class="bars"') == 3  # by month, commune, topic
    assert "04/2026" in page and "Xã Thọ Sơn" in page and "Thời sự" in page
    assert "Mất điện: <strong>1</strong>" in page
    for fmt, mime in (("csv", "text/csv"), ("xlsx", XLSX), ("docx", DOCX)):
        assert f"/reports/download.{fmt}?" in page
        r = client.get(f"/reports/download.{fmt}?from=2026-01-01&to=2026-06-30")
        assert r.status_code == 200 and r.mimetype == mime
    r = client.get("/reports/download.csv?from=2026-01-01&to=2026-06-30")
    assert r.data.decode("utf-8-sig").splitlines()[0].startswith("Mã lượt phát,Mã xã,Xã,")

    panel.get("/lang/en")
    page = panel.get("/reports")
    assert "First half of 2026" in page and "Minutes aired" in page
    r = client.get("/reports/download.xlsx?from=2026-01-01&to=2026-06-30")
    assert openpyxl.load_workbook(io.BytesIO(r.data)).sheetnames == ["As-run log", "Summary"]
    r = client.get("/reports/download.docx?from=2026-01-01&to=2026-06-30")
    assert "BÁO CÁO" in [p.text for p in docx.Document(io.BytesIO(r.data)).paragraphs]


def test_an_operator_sees_only_their_commune_on_the_reports_page(client: FlaskClient) -> None:
    panel = Panel(client)
    panel.login("thoson", "loa-thoson")
    page = panel.get("/reports")
    assert "Xã Thọ Bình" not in page and "Xã Thọ Sơn" in page
    assert client.get(f"/reports/download.docx?commune={THO_BINH}").status_code == 403
    empty = panel.get("/reports?from=2025-01-01&to=2025-12-31")
    assert "Trong kỳ báo cáo không có buổi phát nào." in empty


def test_loa_export_writes_xlsx_and_docx_of_a_period(tmp_path: Path, seeded_db: Path) -> None:
    shutil.copyfile(seeded_db, tmp_path / "loa.db")  # the half-year
    for fmt in ("xlsx", "docx"):
        args = ["--format", fmt, "--commune", THO_SON, "--out", str(tmp_path / f"r.{fmt}")]
        out = run(["export", "--from", "2026-01-01", "--to", "2026-06-30", *args], tmp_path)
        assert out.returncode == 0, out.stderr
        assert "3 broadcasts" in out.stderr
    book = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert book["Nhật ký phát"].max_row == 4
    doc = docx.Document(str(tmp_path / "r.docx"))
    assert any(p.text.endswith("tại Xã Thọ Sơn từ ngày 01/01/2026 đến ngày 30/06/2026")
               for p in doc.paragraphs)  # fmt: skip
    out = run(["export", "--from", "2026-01-01", "--to", "2026-06-30", "--format", "pdf",
               "-o", str(tmp_path / "r.pdf")], tmp_path)  # fmt: skip
    assert out.returncode == 2 and "pdf" in out.stderr


# --- the export's rows from the database --------------------------------------------------


def _half_year_on(settings: Settings, backend: str) -> Loa:
    """The demo district after its half-year (air_half_year) on `backend`, on 10 July."""
    if backend == "postgresql":  # a fresh copy of the demo district: air its half-year
        clock = ManualClock(APRIL)
        loa = build_loa(settings, clock=clock)
        air_half_year(loa, clock)
        loa.close()
    return build_loa(settings, clock=ManualClock(JULY))


@pytest.mark.both_databases
def test_sqlite_and_postgresql_export_the_same_local_times_labels_and_minutes(
    settings: Settings, backend: str
) -> None:
    loa = _half_year_on(settings, backend)
    try:
        report = _report(loa)
        with loa.transaction() as s:
            audio = select(AudioAsset.duration_seconds).where(AudioAsset.stream_url.is_(None))
            speech = s.scalar(audio)
        calls: list[tuple[int, int]] = []
        issued, signed = date(2026, 7, 10), ReportSettings()
        data = reports.export_bytes(
            report, "xlsx", issued, signed, progress=lambda *call: calls.append(call)
        )
        text = reports.export_bytes(report, "csv", issued, signed)
    finally:
        loa.close()
    assert calls == [(5, 5)]  # fewer than 10,000 rows: once, at the end
    log = openpyxl.load_workbook(io.BytesIO(data))["Nhật ký phát"]
    head = [c.value for c in log[1]]
    sheet = [dict(zip(head, (c.value for c in r), strict=True)) for r in log.iter_rows(min_row=2)]
    table = list(csv.DictReader(io.StringIO(text.decode("utf-8-sig"))))
    assert [r["Trạng thái"] for r in sheet] == [r["Trạng thái"] for r in table] == [
        "đã phát", "không phát", "đã phát", "đã hủy", "không phát"
    ]  # fmt: skip
    first, relay = sheet[0], sheet[2]
    assert first["Giờ phát theo lịch"] == datetime(2026, 4, 20, 8, 1)
    assert first["Bắt đầu"] == datetime(2026, 4, 20, 8, 2)
    assert table[0]["Giờ phát theo lịch"] == "20/04/2026 08:01:00"
    assert table[0]["Bắt đầu"] == "20/04/2026 08:02:00"
    assert first["Trễ (giây)"] == 60.0 and table[0]["Trễ (giây)"] == "60.0"
    assert first["Thời lượng (phút)"] == round(speech / 60, 2)
    assert first["Người xác nhận"] == OPERATOR_NAME and first["Xác nhận qua"] == "cán bộ xã"
    assert first["Mức ưu tiên"] == "thông thường" and first["Loại bản tin"] == "đọc văn bản"
    assert relay["Số phút đã phát"] == 15.0 and table[2]["Số phút đã phát"] == "15.0"
    assert sheet[1]["Lý do"] == "Mất điện" and sheet[1]["Bắt đầu"] is None
    assert sheet[3]["Chủ đề"] == "CCHC" and sheet[3]["Lý do"] == ""


@pytest.mark.both_databases
def test_the_xlsx_summary_totalled_from_its_rows_equals_the_reports_counts(
    settings: Settings, backend: str
) -> None:
    loa = _half_year_on(settings, backend)
    tz = loa.settings.timezone
    f = reports.period_filter(tz, H1_2026)
    try:
        with loa.transaction() as s:
            counted = reports.build(s, CENTRE, f, tz, loa.now(), export="docx")
            exported = reports.build(s, CENTRE, f, tz, loa.now(), export="xlsx")
        data = reports.xlsx_bytes(exported)
    finally:
        loa.close()
    assert not exported.by_commune_topic and len(exported.rows) == 5  # not counted in SQL
    summary = openpyxl.load_workbook(io.BytesIO(data))["Tổng hợp"]
    rows = [list(r) for r in summary.iter_rows(min_row=2, values_only=True)]
    assert rows == reports.summary_rows(counted.by_commune_topic) and len(rows) == 4


def test_the_counts_per_local_month_add_up_to_the_totals_of_the_period(loa: Loa) -> None:
    report = _report(loa)
    assert {m: (t.scheduled, t.cancelled) for m, t in report.by_month.items()} == {
        (2026, 1): (0, 0), (2026, 2): (0, 0), (2026, 3): (0, 0),
        (2026, 4): (2, 0), (2026, 5): (1, 1), (2026, 6): (1, 0),
    }  # fmt: skip
    assert report.total.scheduled == 4 and report.total.cancelled == 1
    part = _report(loa, period=reports.Period(date(2026, 5, 1), date(2026, 6, 20)))
    assert {m: (t.scheduled, t.cancelled) for m, t in part.by_month.items()} == {
        (2026, 5): (1, 1),
        (2026, 6): (1, 0),
    }
    assert part.total.scheduled == 2 and part.by_commune["Xã Thọ Sơn"].scheduled == 2


def test_local_times_follow_the_zone_across_a_change_of_offset(loa: Loa) -> None:
    berlin = ZoneInfo("Europe/Berlin")  # summer time from 29 March 2026, 01:00 UTC
    offsets = asrun.zone_offsets(berlin, datetime(2026, 1, 1, tzinfo=UTC),
                                 datetime(2026, 12, 31, tzinfo=UTC))  # fmt: skip
    assert offsets == [
        (datetime(2026, 1, 1, tzinfo=UTC), 3600),
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 7200),
        (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), 3600),
    ]
    f = asrun.make_filter(berlin, "2026-03-01", "2026-06-30")
    with loa.transaction() as s:
        rows = list(asrun.export_rows(s, CENTRE, f, berlin))
    assert rows[0][8] == "20/04/2026 03:01:00"  # 01:01 UTC, in summer time
    out = io.BytesIO()
    report = _report(loa)
    report.rows.tz = berlin  # type: ignore[union-attr]
    reports.write_xlsx(report, out)
    log = openpyxl.load_workbook(out)["Nhật ký phát"]
    assert log.cell(2, 9).value == datetime(2026, 4, 20, 3, 1)


def test_sheet_times_made_from_integers_read_back_as_the_same_times() -> None:
    day = xlsx.serial(46_132 * asrun.MS_PER_DAY)
    assert day == "46132.000000000000" and float(day) == 46132.0
    noon = 46_132 * asrun.MS_PER_DAY + asrun.MS_PER_DAY // 2
    assert xlsx.serial(noon) == "46132.500000000000"
    rng = random.Random(8)
    seconds = [46_132 * asrun.MS_PER_DAY + s * 1000 for s in range(86_400)]
    any_ms = [rng.randrange(0, 80_000 * asrun.MS_PER_DAY) for _ in range(100_000)]
    for ms in seconds + any_ms:
        exact = ms / asrun.MS_PER_DAY  # the nearest double, as float repr wrote it
        read = float(xlsx.serial(ms))
        assert round(read * asrun.MS_PER_DAY) == ms  # the same millisecond
        assert abs(read - exact) <= 5.1e-13 + math.ulp(exact)  # 0.05 µs
        if ms >= 4096 * asrun.MS_PER_DAY:  # since 1911: at most the next double
            assert abs(read - exact) <= math.ulp(exact)
    assert xlsx.serial(-1000) == repr(-1000 / asrun.MS_PER_DAY)


def test_the_sheets_minutes_are_rounded_as_sqlite_rounds_the_csvs() -> None:
    rng = random.Random(8)
    seconds = [7.5, 37.5, 44.1, 44.00000274181366, 900.0]  # halves, and julianday's noise
    seconds += [k * 0.6 + 0.3 for k in range(2000)]  # every half hundredth of a minute
    seconds += [rng.randrange(3_600_000) / 1000 for _ in range(20_000)]
    seconds += [rng.random() * 3600 for _ in range(20_000)]
    db = sqlite3.connect(":memory:")
    try:
        rounded = [r for (r,) in db.execute(
            "WITH x(s) AS (SELECT value FROM json_each(?)) SELECT round(s / 60.0, 2) FROM x",
            (json.dumps(seconds),),
        )]  # fmt: skip
    finally:
        db.close()
    assert [reports.in_minutes(s) for s in seconds] == rounded
    assert reports.in_minutes(7.5) == 0.13


def test_a_memo_with_a_limit_keeps_that_many_values() -> None:
    made: list[int] = []
    memo = asrun.Memo(lambda n: made.append(n) or n * 2, limit=2)
    assert [memo[n] for n in (1, 2, 3, 3, 1)] == [2, 4, 6, 6, 2]
    assert made == [1, 2, 3, 3] and dict(memo) == {1: 2, 2: 4}


def test_a_sheet_of_xml_rows_shares_its_strings_escaped() -> None:
    def chunks(strings: xlsx.Strings) -> list[tuple[str, int]]:
        rows = [f"<row><c><v>{i}</v></c>{strings.cell(text)}{strings.cell(None)}</row>"
                for i, text in enumerate(["a & b <c>\x01", " lead", "a & b <c>\x01"])]  # fmt: skip
        return [("".join(rows), len(rows))]

    out = io.BytesIO()
    sheet = xlsx.Sheet("Nhật ký", ["n", "text", "none"], [], chunks=chunks)
    assert xlsx.write(out, [sheet], reports.XLSX_TIME) == [3]
    with zipfile.ZipFile(out) as zf:
        for info in zf.infolist():
            ElementTree.fromstring(zf.read(info))
        assert zf.read("xl/sharedStrings.xml").count(b"<si>") == 2
    log = openpyxl.load_workbook(out)["Nhật ký"]
    assert [[c.value for c in r] for r in log.iter_rows(min_row=2)] == [
        [0, "a & b <c>", None],
        [1, " lead", None],
        [2, "a & b <c>", None],
    ]
    assert log.auto_filter.ref == "A1:C4" and log.freeze_panes == "A2"


def test_the_docx_reports_its_stages() -> None:
    calls: list[tuple[int, int]] = []
    docx_bytes(reports.Report(H1_2026, "vi"), ReportSettings(), date(2026, 7, 1),
               lambda done, total: calls.append((done, total)))  # fmt: skip
    assert calls == [(1, 3), (2, 3), (3, 3)]

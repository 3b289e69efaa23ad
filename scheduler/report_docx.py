"""The DOCX report of a period, laid out as an administrative document per Nghị định
30/2020/NĐ-CP: A4; margins top and bottom 20 mm, left 30 mm, right 15 mm; Times New Roman,
black; the issuing body and number top left, the national motto and the place and date top
right (a two-column borderless table); `BÁO CÁO` and its subject; totals, tables per
commune and per topic, a chart per month, the missed broadcasts with their reasons;
`Nơi nhận:` and the signature block."""

from __future__ import annotations

import io
from collections.abc import Callable
from copy import deepcopy
from datetime import date
from typing import Any
from xml.sax.saxutils import escape

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.shared import Cm, Mm, Pt, RGBColor

from scheduler.reports import MISSED_LIMIT, TOPIC_NAMES, Report, Tally, vi_date
from scheduler.settings import ReportSettings
from scheduler.xlsx import FORBIDDEN

FONT = "Times New Roman"
BLACK = RGBColor(0, 0, 0)
BODY_PT = 14
TABLE_PT = 12
TEXT_WIDTH_CM = 16.5  # A4 210 mm - 30 mm - 15 mm
CENTER = WD_ALIGN_PARAGRAPH.CENTER
NUMBERS = ("Theo lịch", "Đã phát", "Một phần", "Không phát", "Số phút")
PENDING = "Chưa có kết quả"


def vi_number(value: float, decimals: int = 0) -> str:
    """1234.5 -> '1.234,5' (Vietnamese separators)."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


_LOOKS: dict[tuple[float, bool, bool], Any] = {}  # a run's properties (w:rPr) per look


def _run(p: Any, text: str, size: float = BODY_PT, bold: bool = False, italic: bool = False) -> Any:
    """A run in FONT, black: the first of a look set through python-docx, the next ones
    given a copy of its properties (a province's tables are thousands of runs)."""
    run = p.add_run(text)
    look = (size, bold, italic)
    if look in _LOOKS:
        run._r.insert(0, deepcopy(_LOOKS[look]))
        return run
    run.font.name, run.font.size, run.font.color.rgb = FONT, Pt(size), BLACK
    run.bold, run.italic = bold, italic
    _LOOKS[look] = deepcopy(run._r.rPr)
    return run


def _para(container: Any, text: str = "", size: float = BODY_PT, *, bold: bool = False,
          italic: bool = False, align: Any = None, indent: bool = False, after: float = 6,
          before: float = 0) -> Any:  # fmt: skip
    p = container.add_paragraph()
    if text:
        _run(p, text, size, bold, italic)
    p.alignment = align
    fmt = p.paragraph_format
    fmt.space_before, fmt.space_after = Pt(before), Pt(after)
    fmt.first_line_indent = Cm(1) if indent else None
    return p


def _rule(container: Any, width_cm: float, box_cm: float, after: float = 0) -> None:
    """A horizontal line, `width_cm` long, centred in a `box_cm` wide box: an empty
    paragraph one point high with a bottom border."""
    p = _para(container, after=after)
    fmt = p.paragraph_format
    fmt.left_indent = fmt.right_indent = Cm(max(box_cm - width_cm, 0) / 2)
    fmt.line_spacing = Pt(1)
    border = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("val", "single"), ("sz", "6"), ("space", "1"), ("color", "000000")):
        bottom.set(qn(f"w:{key}"), value)
    border.append(bottom)
    p._p.get_or_add_pPr().append(border)


def _setup(doc: Any) -> None:
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin = section.bottom_margin = Mm(20)
    section.left_margin, section.right_margin = Mm(30), Mm(15)
    normal = doc.styles["Normal"]
    normal.font.name, normal.font.size, normal.font.color.rgb = FONT, Pt(BODY_PT), BLACK
    fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
    for key in ("ascii", "hAnsi", "eastAsia", "cs"):
        fonts.set(qn(f"w:{key}"), FONT)


def _page_numbers(doc: Any) -> None:
    """Per Nghị định 30/2020: page numbers in Arabic numerals, centred in the top margin,
    none on the first page."""
    section = doc.sections[0]
    section.different_first_page_header_footer = True
    p = section.header.paragraphs[0]
    p.alignment = CENTER
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    field.append(_run(p, "2", 14)._r)  # shown until the reader works the field out
    p._p.append(field)


def _cells(table: Any, widths: list[float]) -> None:
    """Column widths, in the grid (LibreOffice reads it) and in every cell (Word does)."""
    table.autofit = False
    for column, width in zip(table.columns, widths, strict=True):
        column.width = Cm(width)
    for row in table.rows:
        for cell, width in zip(row.cells, widths, strict=True):
            cell.width = Cm(width)


def _header(doc: Any, settings: ReportSettings, issued: date) -> None:
    left, right = 6.3, TEXT_WIDTH_CM - 6.3
    table = doc.add_table(rows=2, cols=2)  # no style: no borders
    _cells(table, [left, right])
    top_left, top_right = table.rows[0].cells
    body = top_left.paragraphs[0]
    _run(body, settings.parent_body.upper(), 13)
    body.alignment = CENTER
    _para(top_left, settings.issuer.upper(), 13, bold=True, align=CENTER, after=0)
    _rule(top_left, 2.5, left, after=6)  # the number's row below keeps its distance
    nation = top_right.paragraphs[0]
    _run(nation, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 12, bold=True)
    nation.alignment = CENTER
    _para(top_right, "Độc lập - Tự do - Hạnh phúc", 13, bold=True, align=CENTER, after=0)
    _rule(top_right, 6.2, right, after=6)
    number, place = table.rows[1].cells
    number.paragraphs[0].alignment = place.paragraphs[0].alignment = CENTER
    _run(number.paragraphs[0], f"Số:       /{settings.number_prefix}", 13)
    _run(place.paragraphs[0], f"{settings.place}, {vi_date(issued)}", 14, italic=True)


def subject(report: Report) -> str:
    what = "Kết quả phát bản tin"
    if report.topic:
        what += " " + TOPIC_NAMES.get(report.topic.upper(), f"chủ đề “{report.topic}”")
    where = " trên hệ thống truyền thanh cơ sở"
    if report.commune:
        where += f" tại {report.commune}"
    start, end = report.period.start, report.period.end
    return f"{what}{where} từ ngày {start:%d/%m/%Y} đến ngày {end:%d/%m/%Y}"


def _table(
    doc: Any, head: list[str], rows: list[list[str]], widths: list[float], numeric: int, total: bool
) -> None:
    """A bordered table; columns from `numeric` on are right-aligned numbers; `total`: the
    last row is bold. Written as one piece of XML (a province's tables are thousands of
    cells: python-docx would make each one object by object)."""
    twips = [int(Cm(w).twips) for w in widths]
    grid = "".join(f'<w:gridCol w:w="{w}"/>' for w in twips)

    def row(values: list[str], bold: bool, header: bool = False) -> str:
        cells = []
        for j, (text, width) in enumerate(zip(values, twips, strict=True)):
            align = "center" if header or j == 0 else "right" if j >= numeric else ""
            jc = f'<w:pPr><w:jc w:val="{align}"/></w:pPr>' if align else ""
            cells.append(
                f'<w:tc><w:tcPr><w:tcW w:type="dxa" w:w="{width}"/></w:tcPr><w:p>{jc}'
                f'<w:r>{_rpr(TABLE_PT, bold)}<w:t xml:space="preserve">{_xml(text)}</w:t>'
                "</w:r></w:p></w:tc>"
            )
        flag = '<w:trPr><w:tblHeader w:val="true"/></w:trPr>' if header else ""
        return f"<w:tr>{flag}{''.join(cells)}</w:tr>"

    body = [row(head, True, header=True)]
    body += [row(values, total and i == len(rows) - 1) for i, values in enumerate(rows)]
    table = parse_xml(
        f'<w:tbl {nsdecls("w")}><w:tblPr><w:tblStyle w:val="TableGrid"/>'
        '<w:tblW w:type="auto" w:w="0"/><w:jc w:val="center"/><w:tblLayout w:type="fixed"/>'
        '<w:tblLook w:firstColumn="1" w:firstRow="1" w:lastColumn="0" w:lastRow="0" '
        'w:noHBand="0" w:noVBand="1" w:val="04A0"/></w:tblPr>'
        f"<w:tblGrid>{grid}</w:tblGrid>{''.join(body)}</w:tbl>"
    )
    doc.element.body.sectPr.addprevious(table)
    _para(doc, after=0)


def _rpr(size: float, bold: bool) -> str:
    """A run's properties: FONT, black, `size` points, bold or not."""
    b = "<w:b/>" if bold else '<w:b w:val="0"/>'
    return (
        f'<w:rPr><w:rFonts w:ascii="{FONT}" w:hAnsi="{FONT}"/>{b}<w:i w:val="0"/>'
        f'<w:color w:val="000000"/><w:sz w:val="{round(size * 2)}"/></w:rPr>'
    )


def _xml(text: str) -> str:
    """Text as XML: escaped, the characters XML forbids dropped."""
    return escape(FORBIDDEN.sub("", text))


def _counts(t: Tally, pending: bool) -> list[str]:
    counts = [t.scheduled, t.played, t.partial, t.missed, *([t.pending] if pending else [])]
    return [vi_number(n) for n in counts] + [vi_number(t.minutes, 1)]


def _tally_table(doc: Any, first: str, tallies: dict[str, Tally], total: Tally) -> None:
    """Counts per commune or topic, and their total. Broadcasts without a result yet
    (to come, or waiting for the operator) get a column when there are any, so that
    scheduled = played + partly + not aired (+ pending) on every row."""
    pending = total.pending > 0
    rows = [[str(i), name, *_counts(t, pending)] for i, (name, t) in enumerate(tallies.items(), 1)]
    rows.append(["", "Tổng cộng", *_counts(total, pending)])
    head = ["STT", first, *NUMBERS[:4], *([PENDING] if pending else []), NUMBERS[4]]
    widths = [1.3, 4.0, *[1.85] * 6] if pending else [1.3, 5.2, *[2.0] * 5]
    _table(doc, head, rows, widths, 2, True)


def month_chart(report: Report) -> bytes:
    """A PNG bar chart of broadcasts per month: played (in whole or part) vs not aired."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display
    from matplotlib.ticker import MaxNLocator

    months = list(report.by_month)
    played = [t.played + t.partial for t in report.by_month.values()]
    missed = [t.missed for t in report.by_month.values()]
    fig = Figure(figsize=(6.4, 2.8), dpi=150)
    ax = fig.subplots()
    xs = range(len(months))
    ax.bar([x - 0.2 for x in xs], played, 0.4, label="Đã phát", color="#3b3b3b")
    ax.bar([x + 0.2 for x in xs], missed, 0.4, label="Không phát", color="#c8c8c8",
           edgecolor="#3b3b3b", hatch="//")  # fmt: skip
    ax.set_xticks(list(xs), [f"{m:02d}/{y}" for y, m in months], fontsize=8)
    ax.set_ylabel("Số buổi phát", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _heading(doc: Any, text: str) -> None:
    p = _para(doc, text, bold=True, indent=True)
    p.paragraph_format.keep_with_next = True


def _results(doc: Any, report: Report) -> None:
    t = report.total
    share = f" ({vi_number(100 * t.played / t.scheduled, 1)}%)" if t.scheduled else ""
    lines = [
        f"- Tổng số buổi phát theo lịch: {vi_number(t.scheduled)} buổi;",
        f"- Đã phát: {vi_number(t.played)} buổi{share};",
        f"- Phát một phần (bị ngắt, hoặc không đủ các cụm loa): {vi_number(t.partial)} buổi;",
        f"- Không phát (bị lỡ, lỗi thiết bị): {vi_number(t.missed)} buổi;",
        f"- Đã hủy: {vi_number(t.cancelled)} buổi;",
    ]
    if t.pending:
        lines.append(f"- Chưa đến giờ hoặc chưa có kết quả: {vi_number(t.pending)} buổi;")
    lines.append(f"- Tổng thời lượng đã phát: {vi_number(t.minutes, 1)} phút.")
    for line in lines:
        _para(doc, line, indent=True)
    _heading(doc, "II. KẾT QUẢ THEO XÃ, THỊ TRẤN")
    _tally_table(doc, "Xã, thị trấn", report.by_commune, t)
    _heading(doc, "III. KẾT QUẢ THEO CHỦ ĐỀ")
    _tally_table(doc, "Chủ đề", report.by_topic, t)
    _heading(doc, "IV. SỐ BUỔI PHÁT THEO THÁNG")
    doc.add_picture(io.BytesIO(month_chart(report)), width=Cm(15))
    doc.paragraphs[-1].alignment = CENTER
    doc.paragraphs[-1].paragraph_format.keep_with_next = True  # and its caption
    _para(doc, "Biểu đồ: số buổi đã phát và không phát theo tháng", 12, italic=True, align=CENTER)
    _heading(doc, "V. CÁC BUỔI KHÔNG PHÁT VÀ LÝ DO")
    if not report.missed:
        _para(doc, "Trong kỳ báo cáo không có buổi phát nào bị lỡ.", indent=True)
        return
    for reason, count in report.reasons:
        _para(doc, f"- {reason}: {vi_number(count)} buổi;", indent=True)
    rows = [
        [str(i), f"{m.when:%d/%m/%Y %H:%M}", m.commune, m.title, m.status, m.reason]
        for i, m in enumerate(report.missed[:MISSED_LIMIT], 1)
    ]
    head = ["STT", "Thời gian", "Xã, thị trấn", "Bản tin", "Tình trạng", "Lý do"]
    _table(doc, head, rows, [1.3, 2.6, 3.0, 3.6, 2.2, 3.8], 6, False)
    rest = report.not_aired - MISSED_LIMIT
    if rest > 0:
        _para(doc, f"… và {vi_number(rest)} buổi khác (chi tiết trong tệp Excel nhật ký phát).",
              indent=True)  # fmt: skip


def _signature(doc: Any, settings: ReportSettings) -> None:
    table = doc.add_table(rows=1, cols=2)
    _cells(table, [7.5, TEXT_WIDTH_CM - 7.5])
    table.rows[0]._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))  # one page
    to, sign = table.rows[0].cells
    _run(to.paragraphs[0], "Nơi nhận:", 12, bold=True, italic=True)
    for i, name in enumerate(settings.recipients):
        end = "." if i == len(settings.recipients) - 1 else ";"
        _para(to, f"- {name}{end}", 11, after=0)
    title = sign.paragraphs[0]
    title.alignment = CENTER
    _run(title, settings.signer_title.upper(), 14, bold=True)
    for _ in range(4):
        _para(sign, after=0)
    if settings.signer_name:
        _para(sign, settings.signer_name, 14, bold=True, align=CENTER)


STAGES = 3  # what docx_bytes reports to `progress`: the text, its tables and chart, saved


def docx_bytes(
    report: Report,
    settings: ReportSettings,
    issued: date,
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """The report as a DOCX dated `issued` (a local day); `progress(stage, STAGES)` is
    called as each stage is done."""
    doc = Document()
    _setup(doc)
    _page_numbers(doc)
    _header(doc, settings, issued)
    _para(doc, "BÁO CÁO", 14, bold=True, align=CENTER, after=0, before=18)
    _para(doc, subject(report), 14, bold=True, align=CENTER, after=0)
    _rule(doc, 4.5, TEXT_WIDTH_CM, after=12)
    start, end = vi_date(report.period.start), vi_date(report.period.end)
    _para(doc, f"Căn cứ nhật ký phát của hệ thống truyền thanh cơ sở (ghi nhận tự động từ thiết "
               f"bị phát và xác nhận của cán bộ xã), kết quả phát bản tin từ {start} đến {end} "
               "như sau:", indent=True)  # fmt: skip
    if progress:
        progress(1, STAGES)
    _heading(doc, "I. KẾT QUẢ CHUNG")
    if report.empty:
        _para(doc, "Trong kỳ báo cáo không có buổi phát nào.", indent=True)
    else:
        _results(doc, report)
    seq, digest = report.chain_head
    if seq:
        _para(doc, f"Mã kiểm tra nhật ký phát khi lập báo cáo: bản ghi số {seq}, "
                   f"SHA-256 {digest}.", 13, italic=True, indent=True)  # fmt: skip
    what = subject(report)
    closing = _para(doc, f"Trên đây là báo cáo {what[0].lower()}{what[1:]}./.", indent=True)
    closing.paragraph_format.keep_with_next = True
    _signature(doc, settings)
    if progress:
        progress(2, STAGES)
    out = io.BytesIO()
    doc.save(out)
    if progress:
        progress(3, STAGES)
    return out.getvalue()

"""A small streaming XLSX writer (ECMA-376, SpreadsheetML): a zip of a few XML parts, the
sheets written row by row as they come, so a year of the as-run log never sits in memory.

Each sheet has a bold header row, frozen and filtered, and column widths; cells are
inline strings, numbers, booleans and datetimes (numbers with a date-time format). A sheet
may instead come as XML rows made by its caller, naming strings by their index in the
workbook's shared strings (Strings). A sheet is deflated in a thread of its own while the
next rows are made (zlib lets go of the GIL)."""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from queue import Queue
from threading import Thread
from typing import IO, Any
from xml.sax.saxutils import quoteattr

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Excel's day 0 (1900 date system, past its 1900 leap bug); cells hold local, naive times.
EPOCH = datetime(1899, 12, 30)  # noqa: DTZ001
DAY = timedelta(days=1)
BOLD, TIME = 1, 2  # style indexes (cellXfs) of the header and of datetimes
MAX_CHARS = 32767  # what a cell holds
# Characters XML 1.0 forbids (and lone surrogates, which UTF-8 cannot carry).
FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
BATCH = 1000  # rows encoded and written at once


@dataclass
class Sheet:
    name: str  # at most 31 characters, none of []:*?/\
    header: Sequence[str]
    rows: Iterable[Sequence[object]]
    widths: dict[int, float] = field(default_factory=dict)  # column index -> characters
    # Instead of `rows`: given the shared strings, chunks of `<row>` elements (no row
    # numbers) with how many rows each holds.
    chunks: Callable[[Strings], Iterable[tuple[str, int]]] | None = None


class Strings(dict[str, int]):
    """The workbook's shared strings: each distinct string's index, given on first use."""

    def __missing__(self, value: str) -> int:
        index = self[value] = len(self)
        return index

    def cell(self, value: str | None) -> str:
        """A cell of the string `value` (None: an empty cell)."""
        return "<c/>" if value is None else f'<c t="s"><v>{self[value]}</v></c>'

    def xml(self) -> str:
        items = "".join(f"<si>{_t(value)}</si>" for value in self)
        return f'{HEAD}<sst xmlns="{MAIN}" uniqueCount="{len(self)}">{items}</sst>'


def column(n: int) -> str:
    """1 -> 'A', 27 -> 'AA'."""
    name = ""
    while n:
        n, rest = divmod(n - 1, 26)
        name = chr(65 + rest) + name
    return name


def text(value: str) -> str:
    """Characters as XML text: escaped, forbidden ones dropped, cut at a cell's length."""
    value = FORBIDDEN.sub("", value)[:MAX_CHARS]
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace("\r", "&#13;")  # kept, not read back as a line feed


def _t(value: str) -> str:
    space = ' xml:space="preserve"' if value[:1].isspace() or value[-1:].isspace() else ""
    return f"<t{space}>{text(value)}</t>"


def _string(value: str, style: int = 0) -> str:
    s = f' s="{style}"' if style else ""
    return f'<c t="inlineStr"{s}><is>{_t(value)}</is></c>'


def serial(ms: int) -> str:
    """A time `ms` milliseconds after Excel's day 0 as a serial number (days): the day, then
    twelve decimals of its fraction, made with integers (faster than a float's repr). The
    number read back is within 0.05 µs of the time (since 1911: the time's nearest double,
    or the next one over)."""
    if ms < 0:
        return repr(ms / 86_400_000)
    days, rest = divmod(ms, 86_400_000)
    return f"{days}.{(rest * 10_000_000 + 432) // 864:012d}"


def _number(value: float) -> str:
    if not math.isfinite(value):
        return _string(str(value))  # a cell's number cannot be NaN or infinite
    return f"<c><v>{value!r}</v></c>"


def cell(value: object) -> str:
    """Any value as a cell (None: an empty one, keeping the following cells' columns)."""
    if value is None:
        return "<c/>"
    if isinstance(value, bool):
        return f'<c t="b"><v>{int(value)}</v></c>'
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.replace(tzinfo=None)
        return f'<c s="{TIME}"><v>{(value - EPOCH) / DAY!r}</v></c>'
    if isinstance(value, date):
        return f'<c s="{TIME}"><v>{(value - EPOCH.date()).days}</v></c>'
    if isinstance(value, int):
        return f"<c><v>{value}</v></c>"
    if isinstance(value, float):
        return _number(value)
    return _string(str(value))


def _rows(rows: Iterable[Sequence[Any]], first: int) -> Iterator[tuple[str, int]]:
    """The rows as `<row>` elements from row number `first`, in batches, each with its
    count. Repeated strings are escaped once (names, titles, statuses repeat)."""
    strings: dict[str, str] = {}
    batch: list[str] = []
    for n, row in enumerate(rows, first):
        cells = []
        for v in row:
            kind = type(v)
            if kind is str:
                x = strings.get(v)
                if x is None:
                    x = _string(v)
                    if len(strings) < 100_000:
                        strings[v] = x
            elif kind is datetime and v.tzinfo is None:
                x = f'<c s="{TIME}"><v>{(v - EPOCH) / DAY!r}</v></c>'
            elif kind is int:
                x = f"<c><v>{v}</v></c>"
            elif kind is float:
                x = _number(v)
            else:
                x = cell(v)
            cells.append(x)
        batch.append(f'<row r="{n}">{"".join(cells)}</row>')
        if len(batch) >= BATCH:
            yield "".join(batch), len(batch)
            batch = []
    yield "".join(batch), len(batch)


def _sheet_head(sheet: Sheet) -> str:
    cols = "".join(
        f'<col min="{i + 1}" max="{i + 1}" width="{w}" customWidth="1"/>'
        for i, w in sorted(sheet.widths.items())
    )
    header = "".join(_string(name, BOLD) for name in sheet.header)
    return (
        f'{HEAD}<worksheet xmlns="{MAIN}"><sheetViews><sheetView workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        + (f"<cols>{cols}</cols>" if cols else "")
        + f'<sheetData><row r="1">{header}</row>'
    )


def _styles(time_format: str) -> str:
    return (
        f'{HEAD}<styleSheet xmlns="{MAIN}">'
        f'<numFmts count="1"><numFmt numFmtId="164" formatCode={quoteattr(time_format)}/>'
        '</numFmts><fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
        '</cellStyleXfs><cellXfs count="3">'
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
        "</cellStyles></styleSheet>"
    )


SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def _package(sheets: int) -> dict[str, str]:
    """The content types and the package's relationships."""
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
        f'ContentType="{SHEET_TYPE}.worksheet+xml"/>'
        for i in range(1, sheets + 1)
    )
    return {
        "[Content_Types].xml": (
            f'{HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{SHEET_TYPE}.sheet.main+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{SHEET_TYPE}.styles+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" '
            f'ContentType="{SHEET_TYPE}.sharedStrings+xml"/>{overrides}</Types>'
        ),
        "_rels/.rels": (
            f'{HEAD}<Relationships xmlns="{RELS}"><Relationship Id="rId1" '
            f'Type="{DOC_RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
    }


def _workbook(names: list[str], filters: list[str], time_format: str) -> dict[str, str]:
    """The workbook (its sheets, each one's filtered range), its relationships, styles."""
    sheets = "".join(
        f'<sheet name={quoteattr(name)} sheetId="{i}" r:id="rId{i}"/>'
        for i, name in enumerate(names, 1)
    )
    defined = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"{text(quote_sheet(name))}!{ref}</definedName>"
        for i, (name, ref) in enumerate(zip(names, filters, strict=True))
    )
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{DOC_RELS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(names) + 1)
    )
    styles = len(names) + 1
    return {
        "xl/workbook.xml": (
            f'{HEAD}<workbook xmlns="{MAIN}" xmlns:r="{DOC_RELS}"><bookViews>'
            f'<workbookView activeTab="0"/></bookViews><sheets>{sheets}</sheets>'
            f"<definedNames>{defined}</definedNames></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'{HEAD}<Relationships xmlns="{RELS}">{rels}<Relationship Id="rId{styles}" '
            f'Type="{DOC_RELS}/styles" Target="styles.xml"/><Relationship Id="rId{styles + 1}" '
            f'Type="{DOC_RELS}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
        ),
        "xl/styles.xml": _styles(time_format),
    }


def quote_sheet(name: str) -> str:
    """A sheet's name as a formula writes it: 'Nhật ký phát'."""
    return "'" + name.replace("'", "''") + "'"


@contextmanager
def _in_thread(part: IO[bytes]) -> Iterator[Callable[[bytes], object]]:
    """A `write` that hands the bytes to a thread writing them to `part` (deflating them)."""
    queue: Queue[bytes | None] = Queue(maxsize=4)
    failed: list[BaseException] = []

    def run() -> None:
        while (data := queue.get()) is not None:
            if not failed:
                try:
                    part.write(data)
                except BaseException as exc:  # raised in the caller's thread
                    failed.append(exc)

    def write(data: bytes) -> None:
        if failed:
            raise failed[0]
        queue.put(data)

    thread = Thread(target=run, name="xlsx-deflate", daemon=True)
    thread.start()
    try:
        yield write
    finally:
        queue.put(None)
        thread.join()
    if failed:
        raise failed[0]


def write(out: IO[bytes], sheets: Sequence[Sheet], time_format: str) -> list[int]:
    """Write the workbook to `out`; returns the rows written per sheet (no header)."""
    counted: list[int] = []
    filters = []
    strings = Strings()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, xml in _package(len(sheets)).items():  # first: tools sniff the first entry
            zf.writestr(name, xml)
        for i, sheet in enumerate(sheets, 1):
            chunks = sheet.chunks(strings) if sheet.chunks else _rows(sheet.rows, 2)
            with zf.open(f"xl/worksheets/sheet{i}.xml", "w") as part, _in_thread(part) as put:
                put(_sheet_head(sheet).encode())
                n = 0
                for chunk, rows in chunks:
                    put(chunk.encode())
                    n += rows
                last, end = column(len(sheet.header)), n + 1
                put(f'</sheetData><autoFilter ref="A1:{last}{end}"/></worksheet>'.encode())
            counted.append(n)
            filters.append(f"$A$1:${last}${end}")
        zf.writestr("xl/sharedStrings.xml", strings.xml())
        for name, xml in _workbook([s.name for s in sheets], filters, time_format).items():
            zf.writestr(name, xml)
    return counted

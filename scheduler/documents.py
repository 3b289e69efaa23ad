"""Bulletin text from an administrative document (DOCX or TXT).

Documents follow Nghị định 30/2020/NĐ-CP: a header block (issuing body, "Số: …", the
national motto, place and date), the title and subject, the body, then "Nơi nhận:" and
the signature block. A bulletin is the body: the header and everything from "Nơi nhận"
on are dropped; the title and subject become the bulletin's title.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from scheduler.errors import InvalidInput

MAX_BYTES = 4 * 1024 * 1024

HEADER_LINE = re.compile(
    r"(?i)^(số\s*:|cộng hòa xã hội|cộng hoà xã hội|độc lập\s*[-–]\s*tự do|"
    r"(ủy ban|uỷ ban|ubnd|hđnd|huyện ủy|trung tâm|phòng|sở|ban)\b.*$|[_\-–=*.\s]+$|"
    r".{0,40},\s*ngày\b.*\btháng\b.*\bnăm\b.*$)"
)
DOC_TYPES = (
    "KẾ HOẠCH", "THÔNG BÁO", "BÁO CÁO", "QUYẾT ĐỊNH", "CÔNG VĂN", "CHỈ THỊ", "HƯỚNG DẪN",
    "TỜ TRÌNH", "THÔNG CÁO", "LỜI KÊU GỌI", "BẢN TIN", "CHƯƠNG TRÌNH",
)  # fmt: skip
FOOTER_START = re.compile(r"(?i)^\W*nơi nhận\b")
SIGNATURE_LINE = re.compile(
    r"(?i)^(kt\.|tm\.|tl\.|tuq\.|q\.)\s*\w|^\(?(đã ký|ký tên|ký, ghi rõ)|"
    r"^(phó )?(chủ tịch|giám đốc|trưởng phòng|trưởng ban)$"
)


@dataclass(frozen=True)
class ImportedText:
    title: str
    text: str


def _clean(line: str) -> str:
    line = unicodedata.normalize("NFC", line).replace("\u00a0", " ")
    # Word's symbol-font bullets and invisible marks are nothing an announcer reads.
    line = "".join(ch for ch in line if unicodedata.category(ch) not in ("Co", "Cf", "Cc"))
    line = re.sub(r"\*\*|__|^#+\s*", "", line.strip())  # markdown emphasis from converted files
    return re.sub(r"\s+", " ", line).strip()


def _docx_lines(data: bytes) -> Iterator[tuple[str, bool]]:
    """(text, in_table) for every paragraph of the document body, tables included."""
    from docx import Document
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InvalidInput("the file is not a DOCX document", "invalid_document") from exc
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            yield block.text, False
        elif isinstance(block, Table):
            for row in block.rows:
                for cell in row.cells:
                    for paragraph in cell.paragraphs:
                        yield paragraph.text, True


def _text_lines(data: bytes) -> Iterator[tuple[str, bool]]:
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise InvalidInput("the text file is not UTF-8", "invalid_document") from None
    for line in text.splitlines():
        yield line, False


def _title(lines: list[str]) -> tuple[str, int]:
    """The document type and its subject line, and the index after them (0: no title)."""
    for i, line in enumerate(lines[:12]):
        if line.upper() == line and line.strip(" .:").upper() in DOC_TYPES:
            kind = line.strip(" .:").capitalize()
            subject = lines[i + 1] if i + 1 < len(lines) else ""
            if subject and not HEADER_LINE.match(subject) and len(subject) < 200:
                return f"{kind} {subject[0].lower()}{subject[1:]}".strip(), i + 2
            return kind, i + 1
    return "", 0


def extract(filename: str, data: bytes) -> ImportedText:
    """The title and body paragraphs of a DOCX or TXT document; raises InvalidInput."""
    if len(data) > MAX_BYTES:
        raise InvalidInput("the document is larger than 4 MB", "document_too_large")
    name = filename.lower()
    if name.endswith(".docx"):
        raw = list(_docx_lines(data))
    elif name.endswith((".txt", ".md")):
        raw = list(_text_lines(data))
    else:
        raise InvalidInput("import a .docx or .txt file", "unsupported_document")
    lines = [(line, in_table) for line, in_table in ((_clean(t), tb) for t, tb in raw) if line]
    # The header is what precedes the title; in a DOCX it usually sits in a table.
    texts = [line for line, _ in lines]
    title, start = _title(texts)
    if not title:
        start = 0
        while start < len(lines) and (lines[start][1] or HEADER_LINE.match(texts[start])):
            start += 1
    body: list[str] = []
    for line, in_table in lines[start:]:
        if FOOTER_START.match(line):
            break
        if in_table and (SIGNATURE_LINE.match(line) or HEADER_LINE.match(line)):
            continue
        body.append(line)
    while body and SIGNATURE_LINE.match(body[-1]):
        body.pop()
    if not body:
        raise InvalidInput("no body text was found in the document", "empty_document")
    return ImportedText(title=title or body[0][:120], text="\n".join(body))

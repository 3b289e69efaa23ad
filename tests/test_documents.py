import io
import zipfile

import pytest

from scheduler.documents import extract
from scheduler.errors import InvalidInput
from tests.conftest import DATA

SEED_DOCX = DATA / "ke-hoach-tuyen-truyen-cchc-2021.docx"
SEED_TEXT = DATA / "ke-hoach-tuyen-truyen-cchc-2021.md"


@pytest.mark.parametrize("path", [SEED_DOCX, SEED_TEXT], ids=["docx", "text"])
def test_the_seed_plan_imports_as_its_body_without_header_or_signature(path: object) -> None:
    imported = extract(path.name, path.read_bytes())  # type: ignore[attr-defined]
    lines = imported.text.split("\n")
    assert imported.title == "Kế hoạch tuyên truyền cải cách hành chính năm 2021"
    assert lines[0].startswith("Thực hiện Kế hoạch số 4911/KH-UBND ngày 29/12/2020")
    assert "I. MỤC ĐÍCH YÊU CẦU" in lines
    assert lines[-1].startswith("Trên đây là Kế hoạch tuyên truyền")
    dropped = ["CỘNG HÒA", "Độc lập", "Số:", "Triệu Sơn, ngày", "Nơi nhận", "Lưu: VT",
               "KT. CHỦ TỊCH", "KT.CHỦ TỊCH", "Lê Quang Trung", "UBND HUYỆN TRIỆU SƠN"]  # fmt: skip
    for header in dropped:
        assert not any(line.startswith(header) for line in lines), header
    assert len(lines) == 54


def test_a_plain_notice_without_a_title_keeps_its_lines() -> None:
    text = "Thông báo lịch cắt điện ngày 10/5.\nTừ 6h đến 17h tại thôn 3.\n"
    imported = extract("tb.txt", text.encode())
    assert imported.text == "Thông báo lịch cắt điện ngày 10/5.\nTừ 6h đến 17h tại thôn 3."
    assert imported.title == "Thông báo lịch cắt điện ngày 10/5."


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("plan.docx", b"this is not a zip", "invalid_document"),
        ("plan.docx", b"", "invalid_document"),
        ("plan.pdf", b"%PDF-1.4", "unsupported_document"),
        ("plan.txt", b"\n  \n", "empty_document"),
        (
            "plan.txt",
            "Thông báo".encode("cp1258", errors="replace") + b"\xff\xfe\xfd",
            "invalid_document",
        ),
    ],
)
def test_what_is_not_a_usable_document_is_refused_with_a_reason(
    name: str, data: bytes, code: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        extract(name, data)
    assert raised.value.code == code


def test_a_zip_that_is_not_a_docx_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("hello.txt", "xin chào")
    with pytest.raises(InvalidInput, match="not a DOCX"):
        extract("x.docx", buffer.getvalue())


def test_word_symbol_bullets_and_invisible_marks_are_dropped() -> None:
    imported = extract("tb.txt", "\uf0b7 Họp\u200b dân lúc 7h.\n".encode())
    assert imported.text == "Họp dân lúc 7h."

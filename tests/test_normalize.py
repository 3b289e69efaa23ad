import csv
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio.normalize import normalize, normalize_line, read_decimal, read_number, roman_to_int
from tests.conftest import DATA

VARIANTS = [(r"\bmươi tư\b", "mươi bốn")]  # both are said; the samples use bốn


def canon(text: str) -> str:
    """Case and punctuation are free in the spoken form."""
    text = " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
    for pattern, replacement in VARIANTS:
        text = re.sub(pattern, replacement, text)
    return text


def rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.mark.parametrize(
    "sample",
    rows("normalize-examples.tsv") + rows("normalize-eval.tsv") + rows("normalize-heldout.tsv"),
    ids=lambda s: s["source"][:40],
)
def test_it_reads_administrative_sentences_as_the_announcer_does(sample: dict[str, str]) -> None:
    assert canon(normalize_line(sample["source"])) == canon(sample["expected"])


@pytest.mark.parametrize(
    ("n", "spoken"),
    [
        (0, "không"),
        (5, "năm"),
        (10, "mười"),
        (15, "mười lăm"),
        (21, "hai mươi mốt"),
        (25, "hai mươi lăm"),
        (101, "một trăm linh một"),
        (115, "một trăm mười lăm"),
        (1000, "một nghìn"),
        (1005, "một nghìn không trăm linh năm"),
        (2021, "hai nghìn không trăm hai mươi mốt"),
        (1_000_050, "một triệu không trăm năm mươi"),
        (2_050_000, "hai triệu không trăm năm mươi nghìn"),
        (3_000_000_000, "ba tỷ"),
        (1_500_000_000_000, "một nghìn năm trăm tỷ"),
    ],
)
def test_it_reads_cardinal_numbers(n: int, spoken: str) -> None:
    assert read_number(n) == spoken


def test_it_reads_decimals_with_a_comma_and_keeps_leading_zeros() -> None:
    assert read_decimal("54,3") == "năm mươi bốn phẩy ba"
    assert read_decimal("0,05") == "không phẩy không năm"
    assert read_decimal("1.024") == "một nghìn không trăm hai mươi bốn"
    assert read_decimal("12345678901234567890") == " ".join(
        ["một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín", "không"] * 2
    )


CATEGORIES = {
    "money": [
        ("giá 500.000đ", "giá năm trăm nghìn đồng"),
        ("thưởng 2 triệu VNĐ", "thưởng hai triệu đồng"),
        ("vay 50 triệu đồng/hộ", "vay năm mươi triệu đồng một hộ"),
    ],
    "dates": [
        ("ngày 29/12/2020", "ngày hai mươi chín tháng mười hai năm hai nghìn không trăm hai mươi"),
        ("ngày 29-12-2020", "ngày hai mươi chín tháng mười hai năm hai nghìn không trăm hai mươi"),
        ("tháng 4/2021", "tháng tư năm hai nghìn không trăm hai mươi mốt"),
        ("dịp 30/4", "dịp ba mươi tháng tư"),
        ("tối 24/12", "tối hai mươi bốn tháng mười hai"),
        ("ngày 32/13 là sai", "ngày ba mươi hai trên mười ba là sai"),
    ],
    "times": [
        ("lúc 07:30", "lúc bảy giờ ba mươi"),
        ("từ 17h đến 17h05", "từ mười bảy giờ đến mười bảy giờ năm phút"),
        ("lúc 6h30'", "lúc sáu giờ ba mươi"),
    ],
    "ranges": [
        (
            "giai đoạn 2021-2025",
            "giai đoạn hai nghìn không trăm hai mươi mốt đến hai nghìn không trăm hai mươi lăm",
        ),
        ("từ 35 đến 37 độ C", "từ ba mươi lăm đến ba mươi bảy độ xê"),
        ("1-2 ngày", "một đến hai ngày"),
    ],
    "ratios": [
        ("xếp thứ 16/63 tỉnh", "xếp thứ mười sáu trên sáu mươi ba tỉnh"),
        ("chiếm 1/3 số hộ", "chiếm một phần ba số hộ"),
    ],
    "ordinals": [
        ("họp vào thứ 2 và thứ 4", "họp vào thứ hai và thứ tư"),
        ("giải thứ 1", "giải thứ nhất"),
    ],
    "roman": [
        ("Đại hội lần thứ XIII", "đại hội lần thứ mười ba"),
        ("IV. KINH PHÍ", "bốn kinh phí"),
        ("Quốc hội khóa XV", "quốc hội khóa mười lăm"),
        ("Vitamin C", "vitamin c"),
    ],
    "units": [
        ("diện tích 12,5 ha", "diện tích mười hai phẩy năm héc ta"),
        ("300 m2 đất", "ba trăm mét vuông đất"),
        ("mưa 45mm", "mưa bốn mươi lăm mi li mét"),
        ("nặng 3 kg", "nặng ba ki lô gam"),
    ],
    "phones": [
        ("gọi 0912 345 678", "gọi không chín một hai ba bốn năm sáu bảy tám"),
        ("hotline: 1800 1234", "hotline một tám không không một hai ba bốn"),
        ("điện thoại (0237) 3867 123", "điện thoại không hai ba bảy ba tám sáu bảy một hai ba"),
    ],
    "abbreviations": [
        ("Đ/c Lê Quang Trung", "đồng chí lê quang trung"),
        ("UBND, HĐND và MTTQ", "ủy ban nhân dân hội đồng nhân dân và mặt trận tổ quốc"),
        ("Ban Chỉ đạo (BCĐ)", "ban chỉ đạo"),
        ("đơn vị QRT", "đơn vị quy rờ tê"),
    ],
    "documents": [
        ("Kế hoạch số 4911/KH-UBND", "kế hoạch số bốn nghìn chín trăm mười một"),
        ("Thông tư 39/2020/TT-BTTTT", "thông tư ba mươi chín năm hai nghìn không trăm hai mươi"),
        ("Chỉ thị 05-CT/TW", "chỉ thị năm"),
    ],
}


@pytest.mark.parametrize(
    ("text", "spoken"),
    [case for cases in CATEGORIES.values() for case in cases],
    ids=[f"{name}:{t}" for name, cases in CATEGORIES.items() for t, _ in cases],
)
def test_it_speaks_each_category_of_written_form(text: str, spoken: str) -> None:
    assert canon(normalize_line(text)) == spoken


def test_document_end_marks_and_bullets_are_not_read() -> None:
    assert normalize_line("- Lưu hồ sơ./.") == "lưu hồ sơ."


def test_roman_numerals_must_be_well_formed() -> None:
    assert roman_to_int("XIII") == 13
    assert roman_to_int("IIII") is None
    assert roman_to_int("") is None


def test_it_keeps_the_line_structure() -> None:
    assert normalize("Dòng 1\nDòng 2").split("\n") == ["dòng một", "dòng hai"]


def test_a_lexicon_extends_and_overrides_the_abbreviations() -> None:
    lexicon = {"HTX": "hợp tác xã nông nghiệp", "Thọ Sơn": "Thọ Sơn xã"}
    assert normalize_line("HTX Thọ Sơn", lexicon) == "hợp tác xã nông nghiệp thọ sơn xã"


def test_decomposed_unicode_is_read_like_composed_text() -> None:
    import unicodedata

    text = "Ngày 2/9, UBND xã Thọ Sơn"
    assert normalize_line(unicodedata.normalize("NFD", text)) == normalize_line(text)


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_it_never_crashes_on_any_text(text: str) -> None:
    normalize(text)


ALPHABET = "0123456789/.,:-–%hH()° IVXLCDMKTUBNDaăâbcdđeêghiklmnoôơpqrstuưvxyàáạảãđ"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_it_never_crashes_on_number_like_text(text: str) -> None:
    normalize_line(text)


WORDS = st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyàáạảãầấậẩẫèéẹẻẽ", min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=12))
def test_it_keeps_every_ordinary_word(words: list[str]) -> None:
    assert normalize_line(" ".join(words)).split() == words

import csv
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio.normalize import normalize, normalize_line, read_decimal, read_number, roman_to_int
from tests.conftest import DATA


def canon(text: str) -> str:
    """Case and punctuation are free in the spoken form."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


SAMPLES = list(
    csv.DictReader((DATA / "normalize-examples.tsv").open(encoding="utf-8"), delimiter="\t")
)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s["source"][:30])
def test_it_reads_every_sample_sentence_as_the_announcer_does(sample: dict[str, str]) -> None:
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


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("ngày 29/12/2020", "ngày hai mươi chín tháng mười hai năm hai nghìn không trăm hai mươi"),
        ("tháng 4/2021", "tháng tư năm hai nghìn không trăm hai mươi mốt"),
        ("lúc 07:30", "lúc bảy giờ ba mươi"),
        ("từ 17h đến 17h05", "từ mười bảy giờ đến mười bảy giờ năm phút"),
        (
            "giai đoạn 2021-2025",
            "giai đoạn hai nghìn không trăm hai mươi mốt đến hai nghìn không trăm hai mươi lăm",
        ),
        ("xếp thứ 16/63 tỉnh", "xếp thứ mười sáu trên sáu mươi ba tỉnh"),
        ("họp vào thứ 2 và thứ 4", "họp vào thứ hai và thứ tư"),
        ("Đại hội lần thứ XIII", "đại hội lần thứ mười ba"),
        ("diện tích 12,5 ha", "diện tích mười hai phẩy năm héc ta"),
        ("giá 500.000đ", "giá năm trăm nghìn đồng"),
        ("gọi 0912 345 678", "gọi không chín một hai ba bốn năm sáu bảy tám"),
        ("Đ/c Lê Quang Trung", "đồng chí lê quang trung"),
        ("Kế hoạch số 4911/KH-UBND", "kế hoạch số bốn nghìn chín trăm mười một"),
        ("Thông tư 39/2020/TT-BTTTT", "thông tư ba mươi chín năm hai nghìn không trăm hai mươi"),
    ],
)
def test_it_speaks_dates_times_ranges_ratios_units_phones_and_documents(
    text: str, spoken: str
) -> None:
    assert canon(normalize_line(text)) == spoken


def test_roman_numerals_must_be_well_formed() -> None:
    assert roman_to_int("XIII") == 13
    assert roman_to_int("IIII") is None
    assert roman_to_int("") is None


def test_it_keeps_the_line_structure() -> None:
    assert normalize("Dòng 1\nDòng 2").split("\n") == ["dòng một", "dòng hai"]


def test_a_lexicon_extends_the_abbreviations() -> None:
    assert normalize_line("HTX Thọ Sơn", {"HTX": "hợp tác xã nông nghiệp"}) == (
        "hợp tác xã nông nghiệp thọ sơn"
    )


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_it_never_crashes_on_any_text(text: str) -> None:
    normalize(text)


WORDS = st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyàáạảãầấậẩẫèéẹẻẽ", min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=12))
def test_it_keeps_every_ordinary_word(words: list[str]) -> None:
    assert normalize_line(" ".join(words)).split() == words

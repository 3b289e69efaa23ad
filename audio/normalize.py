"""Administrative Vietnamese text -> the spoken form a district announcer reads.

The normalizer is a fixed sequence of passes over each line; every pass rewrites only
digits, symbols or known abbreviations, so every ordinary word survives untouched.
Conventions (northern broadcast): nghìn, linh, mốt/lăm after mươi, tháng tư, thứ tư.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")

# Abbreviations an announcer expands. Keys are matched case-sensitively as whole words.
ABBREVIATIONS: dict[str, str] = {
    "UBND": "ủy ban nhân dân",
    "HĐND": "hội đồng nhân dân",
    "UBMTTQ": "ủy ban mặt trận tổ quốc",
    "MTTQ": "mặt trận tổ quốc",
    "CCHC": "cải cách hành chính",
    "TTHC": "thủ tục hành chính",
    "BCĐ": "ban chỉ đạo",
    "KT-XH": "kinh tế xã hội",
    "NTM": "nông thôn mới",
    "THCS": "trung học cơ sở",
    "THPT": "trung học phổ thông",
    "CNTT": "công nghệ thông tin",
    "BHYT": "bảo hiểm y tế",
    "BHXH": "bảo hiểm xã hội",
    "PCCC": "phòng cháy chữa cháy",
    "ATGT": "an toàn giao thông",
    "CSGT": "cảnh sát giao thông",
    "HTX": "hợp tác xã",
    "VPHC": "vi phạm hành chính",
    "CBCCVC": "cán bộ công chức viên chức",
    "PCT": "phó chủ tịch",
    "TW": "trung ương",
    "TP": "thành phố",
    "VNĐ": "đồng",
    "VND": "đồng",
    "Đ/c": "đồng chí",
    "đ/c": "đồng chí",
    "b/c": "báo cáo",
}

UNITS: dict[str, str] = {
    "km2": "ki lô mét vuông",
    "km²": "ki lô mét vuông",
    "km": "ki lô mét",
    "m2": "mét vuông",
    "m²": "mét vuông",
    "m3": "mét khối",
    "m³": "mét khối",
    "mm": "mi li mét",
    "cm": "xen ti mét",
    "m": "mét",
    "ha": "héc ta",
    "kg": "ki lô gam",
    "°C": "độ xê",
    "độ C": "độ xê",
    "%": "phần trăm",
    "đ": "đồng",
    "VNĐ": "đồng",
    "VND": "đồng",
}

_NUMBER = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:,\d+)?"
_WORD_END = r"(?![\w²³])"


def _under_thousand(n: int, full: bool) -> list[str]:
    """Words for 0 < n < 1000; `full` reads 'không trăm'/'linh' inside a larger number."""
    hundreds, rest = divmod(n, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    if hundreds or full:
        words += [DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units and words:
            words += ["linh", DIGITS[units]]
        elif units:
            words.append(DIGITS[units])
    elif tens == 1:
        words.append("mười")
        if units:
            words.append("lăm" if units == 5 else DIGITS[units])
    else:
        words += [DIGITS[tens], "mươi"]
        if units:
            words.append({1: "mốt", 5: "lăm"}.get(units, DIGITS[units]))
    return words


def _read(n: int, leading: bool) -> list[str]:
    if n >= 10**9:
        high, low = divmod(n, 10**9)
        return _read(high, leading) + ["tỷ"] + (_read(low, False) if low else [])
    words: list[str] = []
    for scale, name in ((10**6, "triệu"), (10**3, "nghìn"), (1, "")):
        group, n = divmod(n, scale)
        if group:
            words += _under_thousand(group, full=not leading)
            if name:
                words.append(name)
            leading = False
    return words


def read_number(n: int) -> str:
    """Cardinal number in words: 1024 -> 'một nghìn không trăm hai mươi bốn'."""
    if n < 0:
        return "âm " + read_number(-n)
    if n == 0:
        return "không"
    return " ".join(_read(n, leading=True))


def read_digits(text: str) -> str:
    """Every digit of `text` in words, others ignored: '1900 561' -> 'một chín không không ...'."""
    return " ".join(DIGITS[int(c)] for c in text if c.isdigit())


def read_decimal(token: str) -> str:
    """A number written with '.' thousands and ',' decimals: '54,3' -> 'năm mươi bốn phẩy ba'."""
    whole, _, fraction = token.partition(",")
    spoken = read_number(int(whole.replace(".", "")))
    if not fraction:
        return spoken
    if len(fraction) > 3:
        return f"{spoken} phẩy {read_digits(fraction)}"
    zeros = len(fraction) - len(fraction.lstrip("0"))
    tail = [read_number(int(fraction))] if fraction.strip("0") else []
    return " ".join([spoken, "phẩy", *(["không"] * zeros), *tail])


def _month(m: int) -> str:
    return "tư" if m == 4 else read_number(m)


def _date(day: str | None, month: str, year: str | None) -> str | None:
    d = int(day) if day else None
    m = int(month)
    if not 1 <= m <= 12 or (d is not None and not 1 <= d <= 31):
        return None
    parts = [f"ngày {read_number(d)}"] if d is not None else []
    parts.append(f"tháng {_month(m)}")
    if year:
        parts.append(f"năm {read_number(int(year))}")
    return " ".join(parts)


def _time(hours: str, minutes: str | None) -> str | None:
    h, m = int(hours), int(minutes or 0)
    if h > 24 or m > 59:
        return None
    spoken = f"{read_number(h)} giờ"
    if 0 < m < 10:
        return f"{spoken} {read_number(m)} phút"
    return f"{spoken} {read_number(m)}" if m else spoken


_ROMAN = re.compile(r"M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def roman_to_int(text: str) -> int | None:
    """Value of a well-formed Roman numeral, else None."""
    if not text or not _ROMAN.fullmatch(text):
        return None
    total = 0
    for i, ch in enumerate(text):
        value = _ROMAN_VALUES[ch]
        following = _ROMAN_VALUES[text[i + 1]] if i + 1 < len(text) else 0
        total += -value if value < following else value
    return total


Rewrite = Callable[[re.Match[str]], str]


def _keep_if_none(build: Callable[[re.Match[str]], str | None]) -> Rewrite:
    """Leave the match as written when `build` declines it."""

    def rewrite(m: re.Match[str]) -> str:
        spoken = build(m)
        return m.group(0) if spoken is None else f" {spoken} "

    return rewrite


def _roman(m: re.Match[str]) -> str:
    value = roman_to_int(m.group("roman"))
    if value is None:
        return m.group(0)
    return f"{m.group('before')}{read_number(value)}{m.group('after')}"


def _ordinal(m: re.Match[str]) -> str:
    n = int(m.group(2))
    return f"{m.group(1)} " + {1: "nhất", 4: "tư"}.get(n, read_number(n))


def _with_unit(m: re.Match[str]) -> str:
    return f" {read_decimal(m.group(1))} {UNITS[m.group(2)]} "


def _phone(m: re.Match[str]) -> str:
    return f"{m.group(1) or ''} {read_digits(m.group(2))} "


_UNIT_ALTERNATIVES = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
_PHONE_GROUPS = r"(\+?\d[\d .\-]{5,}\d)"

# (pattern, rewrite) in the order they run; each only touches digits or symbols.
_PASSES: list[tuple[re.Pattern[str], Rewrite | str]] = [
    # Document numbers: '4911/KH-UBND' -> the number; '39/2020/TT-BTTTT' -> number and year.
    (
        re.compile(
            r"\b(\d+)(?:/(\d{4}))?[/-][A-ZĐ][A-ZĐa-z&]*(?:[-/][A-ZĐ][A-ZĐa-z&]*)+\b|"
            r"\b(\d+)(?:/(\d{4}))?/[A-ZĐ]{2,}[A-ZĐa-z&]*\b"
        ),
        lambda m: (
            " "
            + " ".join(
                [read_number(int(m.group(1) or m.group(3)))]
                + ([f"năm {read_number(int(y))}"] if (y := m.group(2) or m.group(4)) else [])
            )
            + " "
        ),
    ),
    # Phone and hotline numbers, digit by digit.
    (
        re.compile(
            r"(?i)(điện thoại|đường dây nóng|hotline|số máy|sđt|đt)(?::|\s)*" + _PHONE_GROUPS
        ),
        _phone,
    ),
    (
        re.compile(
            r"()(?<![\d.,])((?:0|\+84)\d{2,3}(?:[ .]?\d{3}){2}\d?|1[89]00(?:[ .]?\d{2,4}){1,2})"
            r"(?![\d,])"
        ),
        _phone,
    ),
    # Dates.
    (
        re.compile(r"(?i)(?:ngày\s+)?\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\b"),
        _keep_if_none(lambda m: _date(m.group(1), m.group(2), m.group(3))),
    ),
    (
        re.compile(r"(?i)\btháng\s+(\d{1,2})[/-](\d{4})\b"),
        _keep_if_none(lambda m: _date(None, m.group(1), m.group(2))),
    ),
    (
        re.compile(r"(?i)\bngày\s+(\d{1,2})[/-](\d{1,2})\b(?![/-]\d)"),
        _keep_if_none(lambda m: _date(m.group(1), m.group(2), None)),
    ),
    (
        re.compile(r"(?i)\btháng\s+(\d{1,2})\b(?![/,.]\d)"),
        _keep_if_none(lambda m: _date(None, m.group(1), None)),
    ),
    # Times: 7h30, 17h, 07:30.
    (
        re.compile(r"\b(\d{1,2})\s?[hH](\d{2})?(?:'|p\b|\s?phút\b)?(?!\w)"),
        _keep_if_none(lambda m: _time(m.group(1), m.group(2))),
    ),
    (
        re.compile(r"\b(\d{1,2}):(\d{2})\b(?!:)"),
        _keep_if_none(lambda m: _time(m.group(1), m.group(2))),
    ),
    # Number with a unit, a percentage or a currency.
    (re.compile(rf"(?<![\d.,])({_NUMBER})\s?({_UNIT_ALTERNATIVES}){_WORD_END}"), _with_unit),
    # Ranges: 2021 - 2025, 35-37.
    (
        re.compile(rf"(?<![\d.,/])({_NUMBER})\s*[-–—]\s*({_NUMBER})(?![\d/])"),
        lambda m: f" {read_decimal(m.group(1))} đến {read_decimal(m.group(2))} ",
    ),
    # Ratios and ranks: 16/63.
    (
        re.compile(r"(?<![\d/])(\d+)/(\d+)(?![\d/])"),
        lambda m: f" {read_number(int(m.group(1)))} trên {read_number(int(m.group(2)))} ",
    ),
    # Roman numerals: headings 'III. ...' and after words such as 'phần', 'lần thứ'.
    (
        re.compile(r"(?m)(?P<before>^[\s*#_]*)(?P<roman>[IVXLCDM]+)(?P<after>[.)]\s)"),
        _roman,
    ),
    (
        re.compile(
            r"(?i)(?P<before>\b(?:phần|chương|mục|lần thứ|khóa|khoá|kỳ|quý|đại hội|thứ)\s+)"
            r"(?-i:(?P<roman>[IVXLCDM]+))(?P<after>\b)"
        ),
        _roman,
    ),
    # Ordinals and weekdays: thứ 2 -> thứ hai, thứ 4 -> thứ tư, thứ 1 -> thứ nhất.
    (re.compile(r"(?i)\b(thứ)\s+(\d+)\b(?![.,]\d)"), _ordinal),
    # Any number left.
    (re.compile(rf"(?<!\w)({_NUMBER})"), lambda m: f" {read_decimal(m.group(1))} "),
]

_PUNCT_TO_SPACE = re.compile(r"[*#_\"“”‘’`~^<>\[\]{}|\\]+")
_PAUSE = re.compile(r"\s*[()]\s*|\s+[-–—]\s+|(?<=\w)[-–—]\s+|\s+[-–—](?=\w)")
_SPACES = re.compile(r"[ \t]+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")


def _expand_abbreviations(text: str, lexicon: Mapping[str, str]) -> str:
    if not lexicon:
        return text
    keys = sorted(lexicon, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w/])(" + "|".join(re.escape(k) for k in keys) + r")(?![\w/])")
    return pattern.sub(lambda m: lexicon[m.group(1)], text)


def normalize_line(line: str, lexicon: Mapping[str, str] | None = None) -> str:
    """The spoken form of one line of text, lowercased; punctuation marks kept as pauses."""
    words = dict(ABBREVIATIONS)
    words.update(lexicon or {})
    text = line
    for pattern, rewrite in _PASSES:
        text = pattern.sub(rewrite, text)
    text = _expand_abbreviations(text, words)
    text = _PUNCT_TO_SPACE.sub(" ", text)
    text = _PAUSE.sub(", ", text)
    text = _SPACES.sub(" ", text).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return text.lower()


def normalize(text: str, lexicon: Mapping[str, str] | None = None) -> str:
    """Normalize every line of `text`, keeping the line structure."""
    return "\n".join(normalize_line(line, lexicon) for line in text.split("\n"))

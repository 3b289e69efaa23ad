"""Administrative Vietnamese text -> the spoken form a district announcer reads.

Each line goes through a fixed sequence of passes. A pass rewrites only digits, symbols
or known abbreviations, so every ordinary word survives (a property test checks it).
Conventions of northern and north-central stations: nghìn, linh, mốt/lăm after mươi,
tháng tư, thứ tư; dates "ngày D tháng M năm Y"; ranges "A đến B"; phone numbers digit
by digit; document numbers (4911/KH-UBND) read as their number and year, the symbol
skipped, as announcers do. Emergency numbers (113, 114, 115) digit by digit; fractions
of a whole "phần", ratios and ranks "trên"; an unknown all-capital token that is not one
Vietnamese syllable spelled with Vietnamese letter names (docs/benchmarks.md lists the
readings decided for each kind of bulletin).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from functools import lru_cache

DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")

# Administrative abbreviations an announcer expands; matched case-sensitively as words.
# Centre staff add local ones (place names, new bodies) in the panel's lexicon.
ABBREVIATIONS: dict[str, str] = {
    "UBND": "ủy ban nhân dân",
    "HĐND": "hội đồng nhân dân",
    "UBMTTQ": "ủy ban mặt trận tổ quốc",
    "MTTQ": "mặt trận tổ quốc",
    "CCHC": "cải cách hành chính",
    "TTHC": "thủ tục hành chính",
    "BCĐ": "ban chỉ đạo",
    "BCH": "ban chấp hành",
    "BTV": "ban thường vụ",
    "KT-XH": "kinh tế xã hội",
    "KTXH": "kinh tế xã hội",
    "NTM": "nông thôn mới",
    "MTQG": "mục tiêu quốc gia",
    "CTMTQG": "chương trình mục tiêu quốc gia",
    "KCN": "khu công nghiệp",
    "CCN": "cụm công nghiệp",
    "BQL": "ban quản lý",
    "BTC": "ban tổ chức",
    "KHCN": "khoa học và công nghệ",
    "KH&CN": "khoa học và công nghệ",
    "GD-ĐT": "giáo dục và đào tạo",
    "THCS": "trung học cơ sở",
    "THPT": "trung học phổ thông",
    "CNTT": "công nghệ thông tin",
    "BHYT": "bảo hiểm y tế",
    "BHXH": "bảo hiểm xã hội",
    "BHTN": "bảo hiểm thất nghiệp",
    "PCCC": "phòng cháy chữa cháy",
    "PCCN": "phòng chống cháy nổ",
    "PCTT": "phòng chống thiên tai",
    "TKCN": "tìm kiếm cứu nạn",
    "ATGT": "an toàn giao thông",
    "ATTP": "an toàn thực phẩm",
    "CSGT": "cảnh sát giao thông",
    "CAND": "công an nhân dân",
    "QĐND": "quân đội nhân dân",
    "HTX": "hợp tác xã",
    "VPHC": "vi phạm hành chính",
    "CBCCVC": "cán bộ công chức viên chức",
    "CBCC": "cán bộ công chức",
    "TNCS": "thanh niên cộng sản",
    "LHPN": "liên hiệp phụ nữ",
    "CCB": "cựu chiến binh",
    "GD&ĐT": "giáo dục và đào tạo",
    "GDĐT": "giáo dục và đào tạo",
    "VH-TT": "văn hóa thông tin",
    "VHTT": "văn hóa thông tin",
    "VHTTDL": "văn hóa thông tin thể thao và du lịch",
    "TN&MT": "tài nguyên và môi trường",
    "TNMT": "tài nguyên và môi trường",
    "NN&PTNT": "nông nghiệp và phát triển nông thôn",
    "LĐTBXH": "lao động thương binh và xã hội",
    "LĐ-TB&XH": "lao động thương binh và xã hội",
    "GPMB": "giải phóng mặt bằng",
    "QSDĐ": "quyền sử dụng đất",
    "GCNQSDĐ": "giấy chứng nhận quyền sử dụng đất",
    "DVC": "dịch vụ công",
    "PCT": "phó chủ tịch",
    "TW": "trung ương",
    "TP": "thành phố",
    "Tp": "thành phố",
    "TX": "thị xã",
    "SĐT": "số điện thoại",
    "ĐT": "điện thoại",
    "VNĐ": "đồng",
    "VND": "đồng",
    "USD": "đô la mỹ",
    "COVID": "cô vít",
    "Covid": "cô vít",
    "WTO": "vê kép tê ô",
    "ASEAN": "a xê an",
    "Đ/c": "đồng chí",
    "đ/c": "đồng chí",
    "b/c": "báo cáo",
    "v.v.": "vân vân",
    "v.v": "vân vân",
    # Weather, storms and floods.
    "KTTV": "khí tượng thủy văn",
    "TBNN": "trung bình nhiều năm",
    "ATNĐ": "áp thấp nhiệt đới",
    "KKL": "không khí lạnh",
    "BĐ": "báo động",
    "BĐKH": "biến đổi khí hậu",
    "CNCH": "cứu nạn cứu hộ",
    # Health.
    "TYT": "trạm y tế",
    "TTYT": "trung tâm y tế",
    "KCB": "khám chữa bệnh",
    "SXH": "sốt xuất huyết",
    "TCM": "tay chân miệng",
    "HIV/AIDS": "hát i vê ết",
    "HIV": "hát i vê",
    "AIDS": "ết",
    "VSMT": "vệ sinh môi trường",
    # Agriculture and livestock.
    "LMLM": "lở mồm long móng",
    "ASF": "dịch tả lợn châu phi",
    "DTLCP": "dịch tả lợn châu phi",
    "PRRS": "tai xanh",
    "THT": "tụ huyết trùng",
    "BVTV": "bảo vệ thực vật",
    "OCOP": "ô cốp",
    "VietGAP": "việt gáp",
    "XDNTM": "xây dựng nông thôn mới",
    # Military service and security.
    "CHQS": "chỉ huy quân sự",
    "BCHQS": "ban chỉ huy quân sự",
    "NVQS": "nghĩa vụ quân sự",
    "NVCA": "nghĩa vụ công an",
    "LLVT": "lực lượng vũ trang",
    "DQTV": "dân quân tự vệ",
    "DQTT": "dân quân thường trực",
    "QNDB": "quân nhân dự bị",
    "GDQP": "giáo dục quốc phòng",
    "QP-AN": "quốc phòng an ninh",
    "QPAN": "quốc phòng an ninh",
    "ANQP": "an ninh quốc phòng",
    "ANTT": "an ninh trật tự",
    "TNXH": "tệ nạn xã hội",
    # Elections, identity, traffic.
    "ĐBQH": "đại biểu quốc hội",
    "UBBC": "ủy ban bầu cử",
    "CCCD": "căn cước công dân",
    "GPLX": "giấy phép lái xe",
    "TNGT": "tai nạn giao thông",
    "TTATGT": "trật tự an toàn giao thông",
    "QL": "quốc lộ",
    # Schools.
    "MN": "mầm non",
    "TH": "tiểu học",
    "GDNN-GDTX": "giáo dục nghề nghiệp giáo dục thường xuyên",
    # Social insurance and welfare.
    "BTXH": "bảo trợ xã hội",
    "NCC": "người có công",
    "NCT": "người cao tuổi",
    "CSXH": "chính sách xã hội",
    "NHCSXH": "ngân hàng chính sách xã hội",
    "XKLĐ": "xuất khẩu lao động",
    "NSNN": "ngân sách nhà nước",
    # National movements, programmes and mass organisations.
    "TDĐKXDĐSVH": "toàn dân đoàn kết xây dựng đời sống văn hóa",
    "TDĐKXDĐSVHKDC": "toàn dân đoàn kết xây dựng đời sống văn hóa ở khu dân cư",
    "ĐSVH": "đời sống văn hóa",
    "GĐVH": "gia đình văn hóa",
    "KDC": "khu dân cư",
    "CVĐ": "cuộc vận động",
    "GNBV": "giảm nghèo bền vững",
    "DTTS": "dân tộc thiểu số",
    "DTTS&MN": "dân tộc thiểu số và miền núi",
    "MTTQVN": "mặt trận tổ quốc việt nam",
    "HLHPN": "hội liên hiệp phụ nữ",
    "ĐTN": "đoàn thanh niên",
    "ĐVTN": "đoàn viên thanh niên",
    "HCCB": "hội cựu chiến binh",
    "CTĐ": "chữ thập đỏ",
    "LĐLĐ": "liên đoàn lao động",
    "CĐCS": "công đoàn cơ sở",
    "HCM": "hồ chí minh",
    "TDTT": "thể dục thể thao",
}

UNITS: dict[str, str] = {
    "km2": "ki lô mét vuông",
    "km²": "ki lô mét vuông",
    "km": "ki lô mét",
    "m2": "mét vuông",
    "m²": "mét vuông",
    "m3": "mét khối",
    "m³": "mét khối",
    "cm3": "xen ti mét khối",
    "cm³": "xen ti mét khối",
    "mm": "mi li mét",
    "cm": "xen ti mét",
    "m": "mét",
    "ha": "héc ta",
    "kg": "ki lô gam",
    "g": "gam",
    "ml": "mi li lít",
    "l": "lít",
    "kW": "ki lô oát",
    "kWh": "ki lô oát giờ",
    "MW": "mê ga oát",
    "°C": "độ xê",
    "ºC": "độ xê",
    "độ C": "độ xê",
    "%": "phần trăm",
    "đ": "đồng",
    "VNĐ": "đồng",
    "VND": "đồng",
    "USD": "đô la mỹ",
}

# After a slash: "đồng/người/tháng", "km/h", "lần/tuần" -> "đồng một người một tháng".
PER_UNIT: dict[str, str] = {
    **{u: UNITS[u] for u in ("km", "km2", "m", "m2", "ha", "kg", "g", "l")},
    "h": "giờ",
    **{w: w for w in ("người", "hộ", "tháng", "năm", "ngày", "tuần", "giờ", "phút", "lần",
                      "con", "khẩu", "sào", "tấn", "tạ", "lượt", "buổi", "xã", "thôn")},
}  # fmt: skip

LETTERS: dict[str, str] = {
    "A": "a", "B": "bê", "C": "xê", "D": "dê", "Đ": "đê", "E": "e", "F": "ép", "G": "giê",
    "H": "hát", "I": "i", "J": "gi", "K": "ca", "L": "lờ", "M": "mờ", "N": "nờ", "O": "o",
    "P": "pê", "Q": "quy", "R": "rờ", "S": "ét", "T": "tê", "U": "u", "V": "vê",
    "W": "vê kép", "X": "ích", "Y": "i", "Z": "dét",
}  # fmt: skip

PHONE_WORDS = r"(?i:điện thoại|đường dây nóng|hotline|số máy|tổng đài|sđt|đt|gọi(?: số)?)"
DATE_WORDS = r"ngày|hôm|sáng|trưa|chiều|tối|đêm|từ|đến|dịp|lễ|khánh|tết|mùng"
ROMAN_WORDS = (
    r"phần|chương|mục|lần thứ|khóa|khoá|kỳ|quý|đại hội|thứ|tập|giai đoạn|báo động|cấp độ|cấp"
    r"|đợt|quân khu|vùng|hạng|khu vực|nhóm|loại"
)
# A fraction of a whole ('2/3 diện tích', 'khoảng 1/2 số hộ') rather than a ratio or rank.
FRACTION_BEFORE = r"khoảng|gần|hơn|chiếm|bằng|trên|quá|dưới|ít nhất|tối thiểu|tối đa"
FRACTION_AFTER = (
    r"số|tổng|tổng số|diện tích|dân số|sản lượng|lượng|khối lượng|kinh phí|thời gian|đàn"
    r"|giá trị|quỹ"
)
# Emergency and service numbers, read digit by digit wherever they stand.
EMERGENCY = r"11[1-5]"
SERVICE_WORDS = r"gọi|số|báo|cấp cứu|khẩn cấp"

_NUMBER = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:,\d+)?"
_INTEGER = r"\d{1,3}(?:\.\d{3})+|\d+"
_UNIT_WORD_END = r"(?![\w²³])"


# --- reading numbers --------------------------------------------------------------------


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


def read_digit_groups(text: str) -> str:
    """A phone number digit by digit, a pause between its written groups."""
    return ", ".join(read_digits(group) for group in re.findall(r"\d+", text))


def read_decimal(token: str) -> str:
    """A number written with '.' thousands and ',' decimals: '54,3' -> 'năm mươi bốn phẩy ba'."""
    whole, _, fraction = token.partition(",")
    digits = whole.replace(".", "")
    if len(digits) > 15:  # not a quantity anybody says: a code or an account number
        return read_digits(token)
    spoken = read_number(int(digits))
    if not fraction:
        return spoken
    if len(fraction) > 3:
        return f"{spoken} phẩy {read_digits(fraction)}"
    zeros = len(fraction) - len(fraction.lstrip("0"))
    tail = [read_number(int(fraction))] if fraction.strip("0") else []
    return " ".join([spoken, "phẩy", *(["không"] * zeros), *tail])


def _month(m: int) -> str:
    return "tư" if m == 4 else read_number(m)


def _date(day: str | None, month: str, year: str | None, say_day: bool = True) -> str | None:
    d = int(day) if day else None
    m = int(month)
    if not 1 <= m <= 12 or (d is not None and not 1 <= d <= 31):
        return None
    parts = [("ngày " if say_day else "") + read_number(d)] if d is not None else []
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


def spell(letters: str) -> str:
    """An acronym letter by letter, as Vietnamese letter names."""
    return " ".join(LETTERS.get(ch.upper(), ch) for ch in letters)


# One Vietnamese syllable written in capitals without diacritics ('TAM', 'NGHIEP'): it can
# be read as a word. Other all-capital tokens ('UV', 'GIZ', 'NPK') are spelled.
_SYLLABLE = re.compile(
    r"(?:NGH|NG|GH|GI|KH|PH|TH|TR|CH|NH|QU|[BCDĐGHKLMNPRSTVX])?"
    r"(?:UYE|UYA|IEU|YEU|OAI|OAY|OEO|UOI|UOU|UAY|AI|AO|AU|AY|EO|EU|IA|IE|IU|OA|OE|OI|OO|UA|UE"
    r"|UI|UO|UY|UU|YE|[AEIOUY])"
    r"(?:NG|NH|CH|[CMNPT])?"
)
_CAPS = re.compile(r"(?<!\w)([A-ZĐ]{2,12})(?!\w)")


def _caps(m: re.Match[str]) -> str:
    token = m.group(1)
    return token if _SYLLABLE.fullmatch(token) else spell(token)


def _code(m: re.Match[str]) -> str:
    """Letters and digits mixed ('H5N1', 'U13', '5K'): letters spelled, numbers read."""
    words = []
    for part in re.findall(r"[A-ZĐ]+|\d+", m.group(0)):
        if not part.isdigit():
            words.append(spell(part))
        else:
            words.append(read_number(int(part)) if len(part) <= 3 else read_digits(part))
    return f" {' '.join(words)} "


# --- the passes -------------------------------------------------------------------------

Rewrite = Callable[[re.Match[str]], str]


def _spoken(build: Callable[[re.Match[str]], str | None]) -> Rewrite:
    """Replace a match by its spoken form, padded with spaces; keep it if `build` declines."""

    def rewrite(m: re.Match[str]) -> str:
        spoken = build(m)
        return m.group(0) if spoken is None else f" {spoken} "

    return rewrite


def _document(m: re.Match[str]) -> str:
    year = m.group("year")
    return f" {read_number(int(m.group('number')))}" + (
        f" năm {read_number(int(year))} " if year else " "
    )


def _phone(m: re.Match[str]) -> str:
    return f"{m.group(1) or ''} {read_digit_groups(m.group(2))} "


def _emergency_list(m: re.Match[str]) -> str:
    """'113, 114 và 115' digit by digit, joined as written (a comma, và, hoặc, hay)."""
    parts = re.split(r"\s*(,|và|hoặc|hay)\s*", m.group(0))
    words = [read_digits(p) if p.isdigit() else p for p in parts]
    return " " + " ".join(words).replace(" ,", ",") + " "


_FRACTION_BEFORE = re.compile(rf"(?i)(?<!\w)(?:{FRACTION_BEFORE})\s+$")
_FRACTION_AFTER = re.compile(rf"(?i)\s+(?:{FRACTION_AFTER})\b")
_ROMAN_BEFORE = re.compile(rf"(?i)(?<!\w)(?:{ROMAN_WORDS})\s+$")


def _word_before(m: re.Match[str], pattern: re.Pattern[str]) -> re.Match[str] | None:
    """The word just before a match, if it is one of `pattern`'s (a cheap look-behind)."""
    return pattern.search(m.string, max(0, m.start() - 16), m.start())


def _ratio(m: re.Match[str]) -> str:
    """'2/3 diện tích' is a fraction (phần); '12/20 thôn', a rank '16/63' are ratios (trên)."""
    a, b = int(m.group("a").replace(".", "")), int(m.group("b").replace(".", ""))
    after = _FRACTION_AFTER.match(m.string, m.end())
    fraction = a < b <= 10 and (after or _word_before(m, _FRACTION_BEFORE))
    return f" {read_number(a)} {'phần' if fraction else 'trên'} {read_number(b)} "


def _day_range(m: re.Match[str]) -> str:
    """'26 - 27/6/2025' -> hai mươi sáu đến hai mươi bảy tháng sáu năm ..."""
    first, last = int(m.group(1)), int(m.group(2))
    spoken = _date(m.group(2), m.group(3), m.group(4), say_day=False)
    if spoken is None or not 1 <= first < last:
        return m.group(0)
    return f" {read_number(first)} đến {spoken} "


def _day_month(m: re.Match[str]) -> str:
    spoken = _date(m.group("d"), m.group("m"), None, say_day=False)
    return m.group(0) if spoken is None else f"{m.group('context')} {spoken} "


def _roman(m: re.Match[str]) -> str:
    value = roman_to_int(m.group("roman"))
    if value is None:
        return m.group(0)
    return f"{m.group('before')}{read_number(value)}{m.group('after')}"


def _ordinal_word(n: int) -> str:
    return {1: "nhất", 4: "tư"}.get(n, read_number(n))


def _roman_after_word(m: re.Match[str]) -> str:
    """'lần thứ IV' -> lần thứ tư; 'báo động II' -> báo động hai; 'Quý II/2023' -> ... năm ..."""
    value = roman_to_int(m.group("roman"))
    before = _word_before(m, _ROMAN_BEFORE)
    if value is None or before is None:
        return m.group(0)
    ordinal = before.group(0).rstrip().lower().endswith("thứ")
    spoken = _ordinal_word(value) if ordinal else read_number(value)
    year = m.group("year")
    return spoken + (f" năm {read_number(int(year))}" if year else "")


def _ordinal(m: re.Match[str]) -> str:
    return f"{m.group(1)} " + _ordinal_word(int(m.group(2)))


def _unit(m: re.Match[str]) -> str:
    return f" {read_decimal(m.group(1))} {UNITS[m.group(2)]} "


def _alternatives(words: Mapping[str, str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


# Document numbers: '4911/KH-UBND' -> the number; '39/2020/TT-BTTTT' -> number and year.
# They go first, before abbreviations inside the symbol could be expanded.
_DOCUMENT = re.compile(
    r"\b(?P<number>\d+)(?:/(?P<year>\d{4}))?"
    r"(?:[/-][A-ZĐ][A-ZĐa-z&]*(?:[-/][A-ZĐ][A-ZĐa-z0-9&]*)+|/[A-ZĐ]{2,}[A-ZĐa-z0-9&]*)\b"
)

_PASSES: list[tuple[re.Pattern[str], Rewrite | str]] = [
    # Emergency numbers in a list ('113, 114, 115'), after a word of calling ('gọi ngay
    # 115', 'số khẩn cấp 114'), or with their service ('113 (công an)'): digit by digit.
    (
        re.compile(
            rf"(?<![\d.,]){EMERGENCY}(?:\s*(?:,|và|hoặc|hay)\s*{EMERGENCY})+(?![\d]|[.,]\d)"
        ),
        _emergency_list,
    ),
    (
        re.compile(
            rf"(?i)(?<!\w)((?:{SERVICE_WORDS})(?:\s+(?:ngay|cho|tới|đến|về|số))*:?\s+)"
            rf"({EMERGENCY})(?![\d]|[.,]\d)"
        ),
        _phone,
    ),
    # Phone, hotline and service numbers, digit by digit.
    (
        re.compile(rf"(?<!\w)({PHONE_WORDS})(?::|\s)*(\(?\+?\d[\d .\-()]*\d|\d)(?!\d|,\d)"),
        _phone,
    ),
    (
        re.compile(
            r"()(?<![\d.,])((?:0|\+84)\d{2,3}(?:[ .-]?\d{3,4}){2}\d{0,1}"
            r"|1[89]00(?:[ .]?\d{2,4}){1,2})(?![\d,])"
        ),
        _phone,
    ),
    # Emergency numbers written with their service: '113 (công an)'.
    (re.compile(rf"()\b({EMERGENCY})\b(?=\s*\()"), _phone),
    # Dates written with dashes become slashes, so a dash can mean a range.
    (re.compile(r"\b(\d{1,2})-(\d{1,2})-(\d{4})\b"), r"\1/\2/\3"),
    # A range of days in one month: 'ngày 26 - 27/6/2025'.
    (
        re.compile(r"(?<![\d.,/])(\d{1,2})\s*[-–—]\s*(\d{1,2})/(\d{1,2})(?:/(\d{4}))?\b(?!/)"),
        _day_range,
    ),
    # Wind force ranges repeat the word: 'cấp 9 - 10' -> cấp chín đến cấp mười.
    (re.compile(r"(?i)\b(cấp)\s+(\d{1,2})\s*[-–—]\s*(?=\d{1,2}\b)"), r"\1 \2 đến \1 "),
    # A quarter or period of a year: 'Quý 2/2023' -> quý hai năm hai nghìn ...
    (
        re.compile(r"(?i)\b(quý|đợt|kỳ)\s+(\d{1,2})/(\d{4})\b"),
        lambda m: f"{m.group(1)} {read_number(int(m.group(2)))} năm {read_number(int(m.group(3)))}",
    ),
    # Ranges: '2021 - 2025', '7h30-11h', '35-37°C', 'tháng 5 - tháng 6'.
    (re.compile(r"(?:(?<=\d)|(?<=\dh))\s*[-–—]\s*(?=\d)"), " đến "),
    (re.compile(r"(?<=\d)\s+[-–—]\s+(?=(?:tháng|ngày|năm)\s+\d)"), " đến "),
    # Dates.
    (
        re.compile(r"(?i)(?:ngày\s+)?\b(\d{1,2})/(\d{1,2})/(\d{4})\b"),
        _spoken(lambda m: _date(m.group(1), m.group(2), m.group(3))),
    ),
    (
        re.compile(r"(?i)\btháng\s+(\d{1,2})/(\d{4})\b"),
        _spoken(lambda m: _date(None, m.group(1), m.group(2))),
    ),
    (
        re.compile(r"(?i)\bngày\s+(\d{1,2})/(\d{1,2})\b(?!/\d)"),
        _spoken(lambda m: _date(m.group(1), m.group(2), None)),
    ),
    # A bare 'D/M' is a date after a word of time ('Quốc khánh 2/9', 'sáng 14/02') or
    # after another date ('30/4 và 1/5').
    (
        re.compile(
            rf"(?i)(?P<context>(?<!\w)(?:{DATE_WORDS})\s+)(?P<d>\d{{1,2}})/(?P<m>\d{{1,2}})\b(?!/\d)"
        ),
        _day_month,
    ),
    (
        re.compile(
            r"(?P<context>(?<=tháng )\w+\s*(?:và|,)\s*)(?P<d>\d{1,2})/(?P<m>\d{1,2})\b(?!/\d)"
        ),
        _day_month,
    ),
    (
        re.compile(r"(?i)\btháng\s+(\d{1,2})\b(?![/,.]\d)"),
        _spoken(lambda m: _date(None, m.group(1), None)),
    ),
    # Times: 7h30, 17h, 7h30', 07:30.
    (
        re.compile(r"\b(\d{1,2})\s?[hH](\d{2})?(?:'|p\b|\s?phút\b)?(?!\w)"),
        _spoken(lambda m: _time(m.group(1), m.group(2))),
    ),
    (
        re.compile(r"\b(\d{1,2}):(\d{2})\b(?!:)"),
        _spoken(lambda m: _time(m.group(1), m.group(2))),
    ),
    # A number with its unit, percentage or currency.
    (
        re.compile(rf"(?<![\d.,])({_NUMBER})\s?({_alternatives(UNITS)}){_UNIT_WORD_END}"),
        _unit,
    ),
    # Per unit: 'đồng/người', 'km/h', 'lần/tuần'.
    (
        re.compile(rf"(?<=[^\W\d])\s*/({_alternatives(PER_UNIT)})(?!\w)"),
        lambda m: f" một {PER_UNIT[m.group(1)]} ",
    ),
    # Ratios, ranks and fractions: '16/63' -> trên; 'khoảng 2/3 số hộ' -> phần.
    (
        re.compile(rf"(?<![\d/.,])(?P<a>{_INTEGER})/(?P<b>{_INTEGER})(?![\d/])"),
        _ratio,
    ),
    # Roman numerals: headings 'III. ...' and after words such as 'phần', 'lần thứ'.
    (
        re.compile(r"(?m)(?P<before>^[\s*#_]*)(?P<roman>[IVXLCDM]+)(?P<after>[.)]\s|[.)]?$)"),
        _roman,
    ),
    (
        re.compile(r"(?<=\s)(?P<roman>[IVXLCDM]+)\b(?:/(?P<year>\d{4})\b)?"),
        _roman_after_word,
    ),
    # A word over a number: 'nam/100 nữ', 'miligam/1 lít khí thở' -> trên.
    (re.compile(r"(?<=[^\W\d])\s*/\s*(?=\d)"), " trên "),
    # Letters with numbers: 'U13' -> u mười ba, '5K' -> năm ca, 'H5N1' -> hát năm nờ một.
    (re.compile(r"(?<![\w.,])[A-ZĐ\d]*(?:[A-ZĐ]\d|\d[A-ZĐ])[A-ZĐ\d]*(?!\w)"), _code),
    # A version number: 'công nghiệp 4.0' -> bốn chấm không.
    (
        re.compile(r"(?<![\d.,])(\d{1,2})\.(\d)(?![\d.,])"),
        lambda m: f" {read_number(int(m.group(1)))} chấm {read_number(int(m.group(2)))} ",
    ),
    # Ordinals and weekdays: thứ 2 -> thứ hai, thứ 4 -> thứ tư, thứ 1 -> thứ nhất.
    (re.compile(r"(?i)\b(thứ)\s+(\d+)\b(?![.,]\d)"), _ordinal),
    # Any number left.
    (re.compile(rf"(?<![\w.,])({_NUMBER})"), lambda m: f" {read_decimal(m.group(1))} "),
    # A word glued to a number by a dash ('COVID-19' after expansion): just a space.
    (re.compile(r"(?<=[^\W\d])-(?=\s*\d)"), " "),
]

_CLEANUP: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\./\."), "."),  # the end mark of a document
    (re.compile(r"…|\.{2,}"), "."),
    (re.compile(r"(?m)^\s*[-+•*]\s+"), ""),  # list bullets
    (re.compile(r"&"), " và "),
    (re.compile(r"[*#_\"“”‘’`~^<>\[\]{}|\\]+"), " "),
    (re.compile(r"\s*[()]\s*"), ", "),
    (re.compile(r"\s+[-–—]\s+"), ", "),  # a spaced dash is a pause
    (re.compile(r"(?<=\w)[-–—/](?=\w)|(?<=\w)[-–—](?=\s)|(?<=\s)[-–—](?=\w)"), " "),
    (re.compile(r"\s+([.,;:!?])"), r"\1"),
    (re.compile(r"([.,;:!?])(?:\s*[.,;:])+"), r"\1"),
    (re.compile(r"^[\s.,;:]+"), ""),
    (re.compile(r"[ \t]+"), " "),
]


@lru_cache(maxsize=32)
def _lexicon_pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    # An abbreviation may be glued to a number: 'QL45' -> quốc lộ 45, 'BĐ3' -> báo động 3.
    # Longest first; the first-letter look-ahead skips most positions cheaply.
    first = "".join(sorted({re.escape(k[0]) for k in keys if k}))
    alternatives = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True) if k)
    return re.compile(rf"(?<![\w/])(?=[{first}])({alternatives})(?=\d|(?![\w/]))")


def _expand(text: str, words: Mapping[str, str]) -> str:
    """Expand abbreviations; '(BCĐ)' right after 'Ban Chỉ đạo' is dropped, not read twice."""
    pattern = _lexicon_pattern(tuple(words))

    def rewrite(m: re.Match[str]) -> str:
        spoken = words[m.group(1)]
        start = m.start()
        opened = text[start - 1 : start] == "(" and text[m.end() : m.end() + 1] == ")"
        if opened and text[: start - 1].rstrip().lower().endswith(spoken.lower()):
            return ""
        return spoken + " " if text[m.end() : m.end() + 1].isdigit() else spoken

    return pattern.sub(rewrite, text)


def normalize_line(line: str, lexicon: Mapping[str, str] | None = None) -> str:
    """The spoken form of one line of text, lowercased; punctuation marks kept as pauses."""
    words = {**ABBREVIATIONS, **lexicon} if lexicon else ABBREVIATIONS
    text = unicodedata.normalize("NFC", line).replace("\u00a0", " ")
    text = _expand(_DOCUMENT.sub(_document, text), words)
    for pattern, rewrite in _PASSES:
        text = pattern.sub(rewrite, text)
    text = _CAPS.sub(_caps, text)
    for pattern, replacement in _CLEANUP:
        text = pattern.sub(replacement, text)
    return text.strip().lower()


def normalize(text: str, lexicon: Mapping[str, str] | None = None) -> str:
    """Normalize every line of `text`, keeping the line structure."""
    return "\n".join(normalize_line(line, lexicon) for line in text.split("\n"))

"""Panel language: Vietnamese by default, English available. Messages are keyed by English."""

from __future__ import annotations

from flask import Flask, current_app, g, session

VI: dict[str, str] = {
    # navigation and common words
    "Today": "Hôm nay",
    "Bulletins": "Bản tin",
    "As-run log": "Nhật ký phát",
    "Endpoints": "Thiết bị",
    "Log in": "Đăng nhập",
    "Log out": "Đăng xuất",
    "Username": "Tên đăng nhập",
    "Password": "Mật khẩu",
    "Wrong username or password.": "Sai tên đăng nhập hoặc mật khẩu.",
    "Please log in.": "Vui lòng đăng nhập.",
    "Commune": "Xã",
    "Communes": "Các xã",
    "All communes": "Tất cả các xã",
    "Time": "Giờ",
    "Title": "Tiêu đề",
    "Text": "Nội dung",
    "Topic": "Chủ đề",
    "Priority": "Mức ưu tiên",
    "Status": "Trạng thái",
    "Started": "Bắt đầu",
    "Finished": "Kết thúc",
    "Late by": "Trễ",
    "Confirmed by": "Xác nhận bởi",
    "Reason": "Lý do",
    "Engine": "Bộ đọc",
    "Voice": "Giọng",
    "Duration": "Thời lượng",
    "seconds": "giây",
    "From": "Từ ngày",
    "To": "Đến ngày",
    "Filter": "Lọc",
    "Export CSV": "Xuất CSV",
    "Any": "Tất cả",
    "Save": "Lưu",
    "Name": "Tên",
    "Kind": "Loại",
    "Last seen": "Liên lạc lần cuối",
    "never": "chưa bao giờ",
    "online": "trực tuyến",
    "offline": "mất kết nối",
    "Details": "Chi tiết",
    "History": "Lịch sử",
    "Deliveries": "Phát tới thiết bị",
    "Actor": "Người/thiết bị",
    "Endpoint": "Thiết bị",
    "Error": "Lỗi",
    "Attempts": "Lần gửi",
    "Dispatcher": "Bộ điều phối",
    # today
    "Broadcasts today": "Lượt phát hôm nay",
    "Nothing is scheduled today.": "Hôm nay chưa có lịch phát.",
    "Aired": "Đã phát",
    "Not aired": "Không phát",
    "Reason (required if not aired)": "Lý do (bắt buộc nếu không phát)",
    "Confirmation saved.": "Đã lưu xác nhận.",
    "awaiting operator confirmation": "chờ cán bộ xã xác nhận",
    "Waiting for confirmation": "Chờ xác nhận đã phát / không phát",
    "overdue": "quá hạn",
    "escalated to the centre": "đã báo lên Trung tâm",
    "Readiness": "Sẵn sàng phát",
    "audio in place at": "âm thanh đã sẵn sàng ở",
    "communes": "xã",
    "not ready": "chưa sẵn sàng",
    "Alerts": "Cảnh báo",
    "state-up": "hoạt động",
    "state-late": "chậm báo",
    "state-down": "mất kết nối",
    "virtual speaker": "loa ảo (mô phỏng)",
    "operator confirms": "cán bộ xã xác nhận",
    "Agent": "Phiên bản",
    "Clock offset": "Lệch đồng hồ",
    "Free cache": "Bộ nhớ trống",
    "disk_full": "đầy bộ nhớ",
    "items without audio": "mục chưa tải được âm thanh",
    "Address": "Địa chỉ",
    "New endpoint": "Thêm thiết bị",
    "mqtt": "Thiết bị MQTT",
    "icecast": "Luồng Icecast",
    "local": "Card âm thanh máy chủ",
    "manual": "Xác nhận thủ công",
    # bulletins
    "New bulletin": "Bản tin mới",
    "Create": "Tạo",
    "Bulletin created.": "Đã tạo bản tin.",
    "Spoken text": "Văn bản đọc",
    "Listen": "Nghe thử",
    "Render speech": "Tạo âm thanh",
    "Speech rendered.": "Đã tạo âm thanh.",
    "Offline voice used: no internet.": "Đã dùng giọng ngoại tuyến: không có internet.",
    "No audio yet.": "Chưa có âm thanh.",
    "Approve": "Duyệt",
    "Approved.": "Đã duyệt.",
    "Schedule": "Lên lịch phát",
    "At (local time)": "Thời điểm (giờ Việt Nam)",
    "Empty for now": "Để trống: phát ngay",
    "Scheduled.": "Đã lên lịch.",
    "Created by": "Người tạo",
    "Approved by": "Người duyệt",
    "Select all": "Chọn tất cả",
    "No bulletins yet.": "Chưa có bản tin.",
    "Approve it before scheduling.": "Cần duyệt trước khi lên lịch.",
    # endpoints
    "New agent endpoint": "Thêm thiết bị (agent)",
    "Endpoint created. Give this token to the agent; it is shown only once:": (
        "Đã thêm thiết bị. Nhập mã này vào agent; mã chỉ hiển thị một lần:"
    ),
    "No endpoints.": "Chưa có thiết bị.",
    "Previous": "Trang trước",
    "Next": "Trang sau",
    "Page": "Trang",
    # speech
    "Speed": "Tốc độ đọc",
    "Intro jingle": "Nhạc hiệu mở đầu",
    "Outro jingle": "Nhạc hiệu kết thúc",
    "true peak": "đỉnh thực",
    "Import a document (.docx, .txt)": "Nhập từ văn bản (.docx, .txt)",
    "Import": "Nhập",
    "Document imported: check the spoken text before approving.": (
        "Đã nhập văn bản: hãy kiểm tra văn bản đọc trước khi duyệt."
    ),
    "Lexicon": "Từ điển",
    "Saved.": "Đã lưu.",
    "Changing what is said returns the bulletin to draft.": (
        "Sửa nội dung sẽ đưa bản tin về trạng thái nháp, cần duyệt lại."
    ),
    "Local abbreviations and place names, and how the announcer reads them. They apply to "
    "every bulletin rendered from now on.": (
        "Từ viết tắt, địa danh của địa phương và cách phát thanh viên đọc. "
        "Áp dụng cho mọi bản tin tạo âm thanh từ nay."
    ),
    "Try a sentence": "Thử một câu",
    "Read it": "Đọc thử",
    "Written": "Cách viết",
    "Spoken": "Cách đọc",
    "Delete": "Xóa",
    "No words yet: the built-in abbreviations apply.": "Chưa có từ nào: dùng từ điển có sẵn.",
    "Saved. New renders read it this way.": "Đã lưu. Các lần tạo âm thanh sau sẽ đọc như vậy.",
    "Jingles": "Nhạc hiệu",
    "Audio file": "Tệp âm thanh",
    "Upload": "Tải lên",
    "No jingles yet.": "Chưa có nhạc hiệu.",
    "Jingle added, matched to the speech loudness.": (
        "Đã thêm nhạc hiệu, đã cân bằng âm lượng với giọng đọc."
    ),
    "voice:vi": "miền Bắc",
    "voice:vi-vn-x-central": "miền Trung",
    "voice:vi-vn-x-south": "miền Nam",
    "piper": "piper (giọng cài trên máy chủ)",
    # values
    "normal": "thông thường",
    "priority": "ưu tiên",
    "emergency": "khẩn cấp",
    "draft": "nháp",
    "approved": "đã duyệt",
    "scheduled": "đã lên lịch",
    "delivered": "đã tải về loa",
    "playing": "đang phát",
    "played": "đã phát",
    "partial": "phát một phần",
    "interrupted": "bị ngắt",
    "failed": "lỗi",
    "missed": "không phát",
    "cancelled": "đã hủy",
    "device": "thiết bị",
    "operator": "cán bộ xã",
    "agent": "agent",
    "virtual": "loa ảo",
    "error:invalid_kind": "Loại thiết bị không hợp lệ.",
    "auto": "tự động",
    "gtts": "Google (trực tuyến)",
    "espeak": "espeak-ng (ngoại tuyến)",
    # errors by code
    "error:not_approved": "Bản tin chưa được duyệt.",
    "error:no_audio": "Bản tin chưa có âm thanh.",
    "error:time_in_past": "Thời điểm đã qua.",
    "error:invalid_time": "Thời điểm không hợp lệ.",
    "error:unknown_commune": "Không có xã với mã này.",
    "error:no_communes": "Hãy chọn ít nhất một xã.",
    "error:duplicate": "Đã có lịch này rồi.",
    "error:empty_text": "Nội dung đang trống.",
    "error:empty_title": "Tiêu đề đang trống.",
    "error:text_too_long": "Nội dung quá dài.",
    "error:reason_required": "Hãy ghi lý do không phát.",
    "error:not_yet_aired": "Chưa đến giờ phát, chưa thể xác nhận đã phát.",
    "error:forbidden": "Bạn không có quyền làm việc này.",
    "error:already_played": "Loa đã báo phát xong bản tin này.",
    "error:invalid_name": "Hãy đặt tên.",
    "error:speech_unavailable": "Không bộ đọc nào tạo được âm thanh.",
    "error:invalid_speech_request": "Không thể tạo âm thanh cho nội dung này.",
    "error:invalid_document": "Tệp không phải văn bản DOCX hoặc TXT hợp lệ.",
    "error:unsupported_document": "Chỉ nhập được tệp .docx hoặc .txt.",
    "error:empty_document": "Không tìm thấy nội dung trong văn bản.",
    "error:no_file": "Hãy chọn một tệp.",
    "error:invalid_jingle": "Tệp nhạc hiệu không phải âm thanh hợp lệ.",
    "error:invalid_term": "Từ hoặc cách đọc không hợp lệ (cách đọc viết bằng chữ, không dùng số).",
    "error:invalid_speed": "Tốc độ đọc phải từ 0,5 đến 2.",
    "error:invalid_voice": "Giọng đọc không có trên máy chủ này.",
    "error:invalid_engine": "Bộ đọc không có trên máy chủ này.",
}

EN: dict[str, str] = {
    "state-up": "up",
    "state-late": "late",
    "state-down": "down",
    "voice:vi": "northern",
    "voice:vi-vn-x-central": "central",
    "voice:vi-vn-x-south": "southern",
}

CATALOGS = {"vi": VI, "en": EN}


def language() -> str:
    lang = session.get("lang") or g.get("user_language") or current_app.config["LOA_LANGUAGE"]
    return lang if lang in CATALOGS else "vi"


def translate(text: str) -> str:
    return CATALOGS[language()].get(text, text)


def error_text(code: str, detail: str) -> str:
    """A domain error in the panel's language: its code's message, else its detail."""
    return CATALOGS[language()].get(f"error:{code}", detail)


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(_=translate, language=language)

"""Panel language: Vietnamese by default, English available. Messages are keyed by English."""

from __future__ import annotations

import re

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
    # the broadcast page, the endpoints page, the login page (panel-vietnamese)
    "endpoint-kind:agent": "Loa thông minh (Loa agent)",
    "endpoint-kind:mqtt": "Thiết bị MQTT",
    "endpoint-kind:icecast": "Luồng Icecast",
    "endpoint-kind:local": "Card âm thanh máy chủ",
    "endpoint-kind:manual": "Xác nhận thủ công",
    "endpoint-kind:virtual": "Loa ảo",
    "attempt:start": "Gửi lệnh phát",
    "succeeded": "thành công",
    "on time": "đúng giờ",
    "early by": "sớm",
    "Menu": "Menu",
    "Log in to continue.": "Đăng nhập để tiếp tục.",
    "Created": "Ngày tạo",
    "Remove device": "Gỡ thiết bị",
    "Remove this device? It stops receiving broadcasts and its token stops working; its "
    "history stays in the log.": (
        "Gỡ thiết bị này? Thiết bị sẽ không nhận lượt phát nữa và mã truy cập hết hiệu lực; "
        "lịch sử phát vẫn được giữ trong nhật ký."
    ),
    "Device removed: {n} broadcasts not played yet were cancelled there.": (
        "Đã gỡ thiết bị: {n} lượt chưa phát ở thiết bị này đã được hủy."
    ),
    "error:unknown_endpoint": "Không có thiết bị này, hoặc thiết bị đã được gỡ.",
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
    # what a bulletin plays
    "What it plays": "Loại bản tin",
    "Text read by a voice": "Văn bản đọc bằng giọng nói",
    "Recorded file": "Tệp ghi âm",
    "Relay": "Tiếp sóng",
    "kind:speech": "giọng đọc",
    "kind:recording": "ghi âm",
    "kind:relay": "tiếp sóng",
    "MP3, WAV or OGG, at most 10 minutes and 100 MB. It is mastered like speech: trimmed, "
    "band-limited for horns, brought to the speech loudness.": (
        "MP3, WAV hoặc OGG, tối đa 10 phút, 100 MB. Tệp được xử lý như giọng đọc: "
        "cắt khoảng lặng, lọc tần số cho loa nén, cân bằng âm lượng."
    ),
    "Stream URL": "Địa chỉ luồng phát",
    "Duration (minutes)": "Thời lượng (phút)",
    "Note (optional)": "Ghi chú (không bắt buộc)",
    "Title and note": "Tiêu đề và ghi chú",
    "Recording": "Tệp ghi âm",
    "Upload a new file": "Tải lên tệp mới",
    "An uploaded recording.": "Tệp ghi âm đã tải lên.",
    "New recording uploaded.": "Đã tải lên tệp ghi âm mới.",
    "Changing what is played returns the bulletin to draft.": (
        "Thay nội dung phát sẽ đưa bản tin về trạng thái nháp, cần duyệt lại."
    ),
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
    # audit log
    "Audit log": "Nhật ký thao tác",
    "Who": "Ai",
    "Action": "Thao tác",
    "What": "Đối tượng",
    "Detail": "Chi tiết",
    "Nothing yet.": "Chưa có gì.",
    "Newer": "Mới hơn",
    "Older": "Cũ hơn",
    "audit:create": "tạo",
    "audit:edit": "sửa",
    "audit:approve": "duyệt",
    "audit:place": "xếp lịch",
    "audit:schedule": "lên lịch",
    "audit:cancel": "hủy",
    "audit:confirm": "xác nhận",
    "audit:export": "xuất",
    "audit:retire": "ngừng dùng",
    "audit:remove": "xóa",
    "audit:put": "lưu",
    "audit:quiet_hours": "đặt giờ yên tĩnh",
    # error pages
    "http-title:400": "Yêu cầu không hợp lệ",
    "http-text:400": "Biểu mẫu đã hết hạn hoặc thiếu thông tin. Hãy tải lại trang rồi thử lại.",
    "http-title:403": "Không có quyền",
    "http-text:403": "Tài khoản của bạn không được làm việc này.",
    "http-title:404": "Không tìm thấy trang",
    "http-text:404": "Trang này không có hoặc đã bị xóa. Hãy kiểm tra lại địa chỉ.",
    "http-title:405": "Không làm được theo cách này",
    "http-text:405": "Trang này không nhận yêu cầu kiểu đó.",
    "http-title:413": "Tệp quá lớn",
    "http-text:413": "Tệp gửi lên vượt quá giới hạn cho phép.",
    "http-title:500": "Lỗi máy chủ",
    "http-text:500": "Đã có lỗi xảy ra. Hãy thử lại sau ít phút.",
    "Back to the start page": "Về trang đầu",
    # public pages for citizens
    "Loudspeaker bulletins of": "Bản tin loa truyền thanh",
    "What the commune's loudspeakers aired in the last four weeks, for those who missed it.": (
        "Những bản tin loa truyền thanh của xã đã phát trong bốn tuần qua, cho ai chưa kịp nghe."
    ),
    "Podcast feed (RSS)": "Nghe qua podcast (RSS)",
    "Nothing aired in these weeks.": "Bốn tuần qua chưa có bản tin nào được phát.",
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
    # the week plan (lịch phát)
    "Plan": "Lịch phát",
    "Whole district": "Toàn huyện",
    "Week {n}": "Tuần {n}",
    "Previous week": "Tuần trước",
    "Next week": "Tuần sau",
    "This week": "Tuần này",
    "Show": "Xem",
    "Outside slots": "Ngoài khung giờ",
    "Monday": "Thứ Hai",
    "Tuesday": "Thứ Ba",
    "Wednesday": "Thứ Tư",
    "Thursday": "Thứ Năm",
    "Friday": "Thứ Sáu",
    "Saturday": "Thứ Bảy",
    "Sunday": "Chủ nhật",
    "Mon": "T2",
    "Tue": "T3",
    "Wed": "T4",
    "Thu": "T5",
    "Fri": "T6",
    "Sat": "T7",
    "Sun": "CN",
    "broadcasts this week": "lượt phát trong tuần",
    "overflow": "bị tràn",
    "conflicts": "xung đột",
    "Overlaps {names}": "Trùng giờ với khung {names}",
    "Longer than the slot": "Vượt thời lượng khung giờ",
    "Planned for": "Dự kiến lúc",
    "moved from": "tràn từ",
    "clash-over": "vượt thời lượng khung giờ",
    "clash-overlap": "trùng giờ với mục khác",
    "overflow in {n} communes": "tràn ở {n} xã",
    "conflict in {n} communes": "xung đột ở {n} xã",
    "Nothing planned.": "Chưa có lịch phát.",
    "Overflow: moved on from an earlier slot that was full.": (
        "Tràn: chuyển sang từ khung giờ trước đã đầy."
    ),
    "Conflict: a commune's queue is longer than its slot, two items play at once, or two "
    "slots overlap.": (
        "Xung đột: hàng đợi của xã dài hơn khung giờ, hai mục phát cùng lúc, "
        "hoặc hai khung giờ chồng nhau."
    ),
    "play first in their slot.": "được phát trước trong khung giờ.",
    "Choose a commune to see its exact queue.": "Chọn một xã để xem đúng hàng đợi của xã.",
    "Cancel": "Hủy",
    "Cancel this broadcast?": "Hủy lượt phát này?",
    "Broadcast cancelled; the rest of the queue moved up.": (
        "Đã hủy lượt phát; các mục sau trong hàng đợi được dồn lên."
    ),
    "New placement": "Đặt lịch phát",
    "Placements": "Lịch đã đặt",
    "Bulletin": "Bản tin",
    "choose an approved bulletin": "chọn bản tin đã duyệt",
    "No approved bulletin yet: approve one on its page first.": (
        "Chưa có bản tin nào được duyệt: hãy duyệt bản tin trước."
    ),
    "Where": "Phát ở đâu",
    "A group": "Một nhóm xã",
    "Chosen communes": "Chọn từng xã",
    "Group": "Nhóm",
    "No groups yet.": "Chưa có nhóm xã nào.",
    "As the bulletin": "Theo bản tin",
    "When": "Khi nào",
    "Into slots, day by day": "Vào khung giờ, theo ngày",
    "Once": "Một lần",
    "Repeat": "Lặp lại",
    "min": "phút",
    "Only on": "Chỉ vào",
    "None ticked: every day.": "Không chọn ngày nào: phát mọi ngày.",
    "First at (local time)": "Lần đầu lúc (giờ Việt Nam)",
    "Times": "Số lần",
    "Every (minutes)": "Cách nhau (phút)",
    "In a slot, a commune's queue plays emergency, then priority, then normal bulletins, "
    "back to back; what does not fit moves on to the next slot.": (
        "Trong một khung giờ, hàng đợi của xã phát bản tin khẩn cấp trước, rồi ưu tiên, "
        "rồi thông thường, nối tiếp nhau; phần không vừa được chuyển sang khung giờ sau."
    ),
    "Place": "Đặt lịch",
    "Back to the plan": "Về lịch phát",
    "Created {n} broadcasts, {m} moved on to a later slot.": (
        "Đã tạo {n} lượt phát, {m} bị tràn sang khung giờ sau."
    ),
    "Once at {at}": "Một lần lúc {at}",
    "{n} times, every {step}, from {at}": "{n} lần, cách nhau {step}, từ {at}",
    "In {slots}, {first} to {last}": "Vào {slots}, từ {first} đến {last}",
    "Group: {name}": "Nhóm: {name}",
    "and {n} more communes": "và {n} xã khác",
    "and {n} more broadcasts": "và {n} lượt phát khác",
    "Broadcasts": "Lượt phát",
    "waiting": "chờ phát",
    "Cancelled at": "Đã hủy lúc",
    "Cancel placement": "Hủy lịch",
    "Cancel this placement? Its broadcasts not played yet are cancelled.": (
        "Hủy lịch phát này? Các lượt chưa phát sẽ bị hủy."
    ),
    "Placement cancelled: {n} broadcasts not played yet were cancelled.": (
        "Đã hủy lịch: {n} lượt chưa phát đã được hủy."
    ),
    "No placements yet.": "Chưa có lịch phát nào.",
    "This bulletin's placements": "Lịch phát của bản tin",
    "Place in the week plan": "Đặt lịch phát",
    "into slots, once, or repeated": "vào khung giờ, một lần hoặc lặp lại",
    "Not placed yet.": "Chưa đặt lịch phát.",
    "Next broadcasts": "Các lượt phát sắp tới",
    "Nothing waiting to play.": "Không có lượt nào đang chờ phát.",
    # slots (khung giờ) and quiet hours (giờ yên tĩnh)
    "Slots and quiet hours": "Khung giờ và giờ yên tĩnh",
    "Slots": "Khung giờ",
    "Start": "Bắt đầu",
    "End": "Kết thúc",
    "Minutes": "Số phút",
    "Days": "Các ngày",
    "Every day": "Mọi ngày",
    "New slot": "Thêm khung giờ",
    "Add": "Thêm",
    "No slots yet.": "Chưa có khung giờ nào.",
    "Retire": "Bỏ khung giờ",
    "Retire this slot? Its history stays.": "Bỏ khung giờ này? Lịch sử phát vẫn được giữ.",
    "Slot {name} added.": "Đã thêm khung giờ {name}.",
    "Slot {name} retired.": "Đã bỏ khung giờ {name}.",
    "Quiet hours": "Giờ yên tĩnh",
    "Only emergency bulletins air in a commune's quiet hours. Setting them cancels the other "
    "broadcasts already planned in them. Leave both times empty to clear them.": (
        "Trong giờ yên tĩnh của xã chỉ phát bản tin khẩn cấp. Khi đặt giờ yên tĩnh, các lượt "
        "phát khác đã lên lịch trong giờ đó sẽ bị hủy. Để trống cả hai ô để bỏ giờ yên tĩnh."
    ),
    "Set quiet hours": "Đặt giờ yên tĩnh",
    "Quiet hours set for {n} communes; {m} broadcasts in them were cancelled.": (
        "Đã đặt giờ yên tĩnh cho {n} xã; {m} buổi phát trong giờ đó đã bị hủy."
    ),
    "Quiet hours cleared for {n} communes.": "Đã bỏ giờ yên tĩnh của {n} xã.",
    "No commune has quiet hours.": "Chưa xã nào có giờ yên tĩnh.",
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
    "error:no_bulletin": "Hãy chọn một bản tin đã duyệt.",
    "error:unknown_bulletin": "Không có bản tin này.",
    "error:no_slots": "Hãy chọn ít nhất một khung giờ.",
    "error:invalid_date": "Ngày không hợp lệ.",
    "error:invalid_rule": "Hãy chọn cách phát: vào khung giờ, một lần hoặc lặp lại.",
    "error:invalid_range": "Ngày kết thúc đứng trước ngày bắt đầu.",
    "error:invalid_repeat": "Số lần lặp từ 1 đến 1000, cách nhau ít nhất 1 phút.",
    "error:invalid_days": "Ngày trong tuần không hợp lệ.",
    "error:unknown_slot": "Không có khung giờ này.",
    "error:never_fits": "Bản tin dài hơn mọi khung giờ đã chọn.",
    "error:range_in_past": "Khoảng ngày đã qua.",
    "error:slot_in_use": "Khung giờ còn lượt phát đã lên lịch; hãy hủy các lịch phát đó trước.",
    "Planned until {d}; later days are added day by day.": (
        "Đã lập lịch đến ngày {d}; các ngày sau được lập dần mỗi ngày."
    ),
    "error:range_too_long": "Khoảng ngày dài quá một năm; hãy kiểm tra lại năm.",
    "error:duplicate_placement": "Bản tin này đã được đặt lịch vào đúng khung giờ, ngày và xã đó.",
    "error:slot_past_midnight": "Khung giờ kéo qua nửa đêm; hãy tách thành hai khung giờ.",
    "error:unknown_group": "Không có nhóm xã này.",
    "error:duplicate_commune": "Một xã được chọn hai lần.",
    "error:unknown_placement": "Không có lịch phát này.",
    "error:not_cancellable": "Lượt phát đã bắt đầu hoặc đã xong, không thể hủy.",
    "error:unknown_broadcast": "Không có lượt phát này.",
    "error:invalid_priority": "Mức ưu tiên không hợp lệ.",
    "error:invalid_audio": (
        "Tệp không phải âm thanh MP3, WAV hoặc OGG hợp lệ, hoặc dài quá 10 phút, lớn quá 100 MB."
    ),
    "error:invalid_stream_url": (
        "Địa chỉ luồng phát phải bắt đầu bằng http:// hoặc https:// và không chứa tên đăng nhập, "
        "mật khẩu."
    ),
    "error:invalid_duration": "Thời lượng tiếp sóng từ 1 giây đến 4 giờ (240 phút).",
    "error:not_speech": "Bản tin này không đọc bằng giọng nói.",
    "error:not_recording": "Bản tin này không phải tệp ghi âm.",
    "error:not_relay": "Bản tin này không phải tiếp sóng.",
    "error:title_too_long": "Tiêu đề dài quá 300 ký tự.",
    "error:quiet_hours": "Thời điểm này nằm trong giờ yên tĩnh của xã: chỉ phát bản tin khẩn cấp.",
    "error:quiet_incomplete": (
        "Hãy nhập cả giờ bắt đầu và giờ kết thúc, hoặc để trống cả hai để bỏ giờ yên tĩnh."
    ),
    "error:invalid_minutes": "Số phút của khung giờ phải là số nguyên, ít nhất 1.",
    # reports
    "Reports": "Báo cáo",
    "Period": "Kỳ báo cáo",
    "Report (DOCX)": "Báo cáo (DOCX)",
    "Excel (XLSX)": "Excel (XLSX)",
    "No broadcasts in this period.": "Trong kỳ báo cáo không có buổi phát nào.",
    "Scheduled": "Theo lịch",
    "Minutes aired": "Số phút đã phát",
    "Played vs not aired": "Đã phát và không phát",
    "By month": "Theo tháng",
    "By commune": "Theo xã",
    "By topic": "Theo chủ đề",
    "Why broadcasts were not aired": "Lý do không phát",
    "Second half of": "6 tháng cuối năm",
    "First half of": "6 tháng đầu năm",
    "Whole year": "Cả năm",
}

AUDIT_ACTIONS = ("create", "edit", "approve", "place", "schedule", "cancel", "confirm",
                 "export", "retire", "remove", "put", "quiet_hours")  # fmt: skip
EN: dict[str, str] = {
    **{f"audit:{a}": a.replace("_", " ") for a in AUDIT_ACTIONS},
    "http-title:400": "Bad request",
    "http-text:400": "The form expired or lacks something. Reload the page and try again.",
    "http-title:403": "Not allowed",
    "http-text:403": "Your account may not do this.",
    "http-title:404": "Page not found",
    "http-text:404": "There is no such page, or it was removed. Check the address.",
    "http-title:405": "Not this way",
    "http-text:405": "This page does not take that kind of request.",
    "http-title:413": "File too large",
    "http-text:413": "The file sent is larger than allowed.",
    "http-title:500": "Server error",
    "http-text:500": "Something went wrong. Try again in a few minutes.",
    "state-up": "up",
    "state-late": "late",
    "state-down": "down",
    "voice:vi": "northern",
    "voice:vi-vn-x-central": "central",
    "voice:vi-vn-x-south": "southern",
    "clash-over": "longer than the slot",
    "clash-overlap": "plays while another item does",
    "endpoint-kind:agent": "Loa agent",
    "endpoint-kind:mqtt": "MQTT device",
    "endpoint-kind:icecast": "Icecast stream",
    "endpoint-kind:local": "Server sound card",
    "endpoint-kind:manual": "Operator confirms",
    "endpoint-kind:virtual": "Virtual speaker",
    "attempt:start": "start",
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


# English the drivers, the dispatcher and the domain write into the log (an attempt's or a
# delivery's error, a history row's reason), matched from its start; the rest shows as is.
MESSAGES_VI = tuple((re.compile(pattern), vi) for pattern, vi in (
    (r"the agent has not confirmed it holds the audio",
     "loa chưa báo đã tải âm thanh; chỉ phát được nếu tải kịp trước khi hết thời gian chờ"),
    (r"dispatcher was late", "máy chủ điều phối chậm quá thời gian chờ nên không phát muộn"),
    (r"no proof of play", "thiết bị không báo đã phát"),
    (r"no end-of-play report", "thiết bị không báo đã phát xong"),
    (r"no driver for '?(\w+)'? endpoints", "máy chủ này không điều khiển loại thiết bị {0}"),
    (r"the (\w+) driver failed: (.*)", "bộ điều khiển {0} bị lỗi: {1}"),
    (r"the audio file (.*) is missing", "thiếu tệp âm thanh {0}"),
    (r"(.*) is not an ALSA device name", "{0} không phải tên card âm thanh ALSA"),
    (r"the address (\S+) is not an icecast mount URL",
     "địa chỉ {0} không phải luồng Icecast dạng icecast://source:MẬT_KHẨU@MÁY:CỔNG/MOUNT"),
    (r"icecast never listed this source on (\S+)", "máy chủ Icecast không nhận luồng phát ở {0}"),
    (r"stopped before icecast listed the source on (\S+)",
     "đã dừng trước khi máy chủ Icecast nhận luồng phát ở {0}"),
    (r"cannot (?:open|play) the relay stream:? ?(.*)", "không mở được luồng tiếp sóng {0}"),
    (r"the relay stream (\S+) sent nothing", "luồng tiếp sóng {0} không gửi âm thanh"),
    (r"cannot start (\S+?)(:.*|$)", "không chạy được {0}{1}"),
    (r"(\S+) exited with (-?\d+)(.*)", "{0} dừng với mã lỗi {1}{2}"),
    (r"interrupted by emergency", "bị ngắt để phát bản tin khẩn cấp"),
    (r"in the quiet hours (\S+)", "trong giờ yên tĩnh {0}"),
    (r"replaced by (.+)", "thay bằng thiết bị {0}"),
    (r"placement changed$", "lịch phát đã thay đổi"),
    (r"cancelled$", "đã hủy"),
    (r"endpoint removed$", "thiết bị đã được gỡ"),
))  # fmt: skip


def message(text: str | None) -> str:
    """A message the domain wrote in English, in Vietnamese when it is a known one."""
    if not text or language() != "vi":
        return text or ""
    for pattern, vi in MESSAGES_VI:
        found = pattern.match(text)
        if found:
            return vi.format(*found.groups())
    return text


def number(value: float, digits: int = 0) -> str:
    """A number as the panel's language writes it: Vietnamese 20.000 and 28,6."""
    text = f"{value:,.{digits}f}"
    return text.translate(str.maketrans(",.", ".,")) if language() == "vi" else text


def seconds(value: float, digits: int = 1) -> str:
    return f"{number(value, digits)} {translate('seconds')}"


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(_=translate, language=language, message=message)
    app.jinja_env.filters["number"] = number

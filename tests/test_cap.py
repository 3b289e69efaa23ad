"""CAP 1.2 alerts from a warning centre become emergency broadcasts (POST /alerts/cap).

The clock stands at Thursday 2026-11-26 08:00 in Triệu Sơn (START); the sample alerts in
tests/data/cap were sent a few minutes before."""

from typing import Any

import pytest
from sqlalchemy import func, select, update

from audio.tts import TtsError
from scheduler import cap, service
from scheduler.context import Loa
from scheduler.models import Broadcast, Bulletin, CapAlert
from tests.conftest import DATA, THO_BINH, THO_SON, THO_TIEN, Api

pytestmark = pytest.mark.both_databases

FLOOD = (DATA / "cap" / "flash-flood-tho-son.xml").read_text("utf-8")
STORM = (DATA / "cap" / "storm-by-names.xml").read_text("utf-8")
CANCEL = (DATA / "cap" / "cancel-flash-flood.xml").read_text("utf-8")
XXE = (DATA / "cap" / "xxe.xml").read_text("utf-8")
HEADLINE = "Cảnh báo lũ quét tại xã Thọ Sơn"


def send(api: Api, xml: str, content_type: str = "application/cap+xml") -> Any:
    return api.post("/alerts/cap", data=xml.encode("utf-8"), content_type=content_type)


def count(loa: Loa, model: type, *where: Any) -> int:
    with loa.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def rows(loa: Loa) -> tuple[int, int, int]:
    return count(loa, CapAlert), count(loa, Bulletin), count(loa, Broadcast)


def test_an_actual_alert_with_a_commune_code_airs_at_once_there_as_an_emergency_in_vietnamese(
    api: Api, loa: Loa
) -> None:
    r = send(api, FLOOD)
    assert r.status_code == 201, r.json
    assert r.json["communes"] == [THO_SON] and r.json["unknown_areas"] == []
    (broadcast_id,) = r.json["broadcasts"]
    broadcast = api.get(f"/broadcasts/{broadcast_id}").json
    assert broadcast["commune"] == THO_SON
    assert broadcast["priority"] == "emergency" and broadcast["status"] == "scheduled"
    assert broadcast["scheduled_at"] == "2026-11-26T08:00:00+07:00"  # now: it interrupts
    bulletin = api.get(f"/bulletins/{r.json['bulletin_id']}").json
    assert bulletin["title"] == HEADLINE  # the Vietnamese info, not the English one first
    assert bulletin["text"].split("\n\n") == [
        HEADLINE,
        "Mưa lớn kéo dài, nguy cơ xảy ra lũ quét và sạt lở đất trong 6 giờ tới.",
        "Bà con không đi qua ngầm tràn, di chuyển người và tài sản đến nơi an toàn.",
    ]
    assert bulletin["priority"] == "emergency" and bulletin["status"] == "approved"
    assert bulletin["approved_by"] == "token:test (CAP)" and bulletin["topic"] == "CAP"
    assert bulletin["audio"]["duration_seconds"] > 3
    with loa.transaction() as s:
        (alert,) = s.scalars(select(CapAlert))
        assert (alert.identifier, alert.sender) == (
            "TTKTTV-TH-2026-1126-0755",
            "canhbao@kttv-thanhhoa.gov.vn",
        )
        assert (alert.status, alert.msg_type, alert.bulletin_id) == (
            "Actual",
            "Alert",
            r.json["bulletin_id"],
        )
        assert alert.received_by == "token:test" and alert.xml == FLOOD
        assert alert.id == r.json["alert_id"]


def test_communes_named_in_words_are_found_whatever_the_case_accents_or_xa_prefix(
    api: Api, loa: Loa
) -> None:
    r = send(api, STORM)
    assert r.status_code == 201, r.json
    assert r.json["communes"] == [THO_BINH, THO_TIEN]
    assert r.json["unknown_areas"] == ["Xã Hòa Bình Xa Lạ"]
    assert count(loa, Broadcast, Broadcast.priority == "emergency") == 2


def test_the_same_alert_sent_again_gets_the_first_answer_and_airs_once(api: Api, loa: Loa) -> None:
    first = send(api, FLOOD)
    again = send(api, FLOOD, "text/xml")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["duplicate"] is True
    assert {k: again.json[k] for k in ("bulletin_id", "broadcasts", "communes")} == {
        k: first.json[k] for k in ("bulletin_id", "broadcasts", "communes")
    }
    assert rows(loa) == (1, 1, 1)


def test_a_retry_arriving_while_the_first_is_still_speaking_airs_the_alert_once(
    api: Api, loa: Loa, monkeypatch: pytest.MonkeyPatch
) -> None:
    render = service.render_bulletin
    retries: list[Any] = []

    def slow_render(*args: Any, **kwargs: Any) -> Any:
        if not retries:  # the centre gave up waiting and sends the alert again
            retries.append(None)
            retries[0] = send(api, FLOOD)
        return render(*args, **kwargs)

    monkeypatch.setattr(service, "render_bulletin", slow_render)
    first = send(api, FLOOD)
    (retry,) = retries
    assert (retry.status_code, first.status_code) == (201, 200)
    assert first.json["broadcasts"] == retry.json["broadcasts"]
    assert rows(loa) == (1, 1, 1)  # the bulletin the first request made is gone


def test_an_identifier_reused_for_another_alert_is_a_conflict(api: Api, loa: Loa) -> None:
    assert send(api, FLOOD).status_code == 201
    other = FLOOD.replace("2026-11-26T07:55:00+07:00", "2026-11-26T07:57:00+07:00")
    r = send(api, other)
    assert r.status_code == 409 and r.json["error"] == "cap_duplicate"
    assert rows(loa) == (1, 1, 1)


@pytest.mark.parametrize("status", ["Test", "Exercise", "System", "Draft"])
def test_test_and_exercise_alerts_are_recorded_and_never_aired(
    api: Api, loa: Loa, status: str
) -> None:
    r = send(api, FLOOD.replace("<status>Actual</status>", f"<status>{status}</status>"))
    assert r.status_code == 200, r.json
    assert r.json["recorded"] is True and r.json["status"] == status
    assert r.json["communes"] == [THO_SON]  # where it would have aired
    assert rows(loa) == (1, 0, 0)


def test_a_cancel_cancels_what_the_alert_has_not_started_and_says_what_still_plays(
    api: Api, loa: Loa
) -> None:
    both = FLOOD.replace(
        "<geocode><valueName>mã xã</valueName><value>15667</value></geocode>",
        "<geocode><valueName>mã xã</valueName><value>15667</value></geocode>"
        "<geocode><valueName>mã xã</valueName><value>15670</value></geocode>",
    )
    aired = send(api, both).json
    tho_son, tho_binh = aired["broadcasts"]
    with loa.transaction() as s:  # Thọ Bình's loudspeakers already play it
        s.execute(update(Broadcast).where(Broadcast.id == tho_binh).values(status="playing"))
    r = send(api, CANCEL)
    assert r.status_code == 200, r.json
    assert r.json["cancelled"] == 1 and r.json["still_playing"] == [tho_binh]
    assert "not stopped" in r.json["detail"]
    assert api.get(f"/broadcasts/{tho_son}").json["status"] == "cancelled"
    assert api.get(f"/broadcasts/{tho_binh}").json["status"] == "playing"
    assert count(loa, CapAlert, CapAlert.msg_type == "Cancel") == 1
    again = send(api, CANCEL)
    assert again.status_code == 200 and again.json["cancelled"] == 0
    assert count(loa, CapAlert) == 2


def test_a_test_cancel_never_touches_a_real_alert(api: Api, loa: Loa) -> None:
    (broadcast_id,) = send(api, FLOOD).json["broadcasts"]
    r = send(api, CANCEL.replace("<status>Actual</status>", "<status>Test</status>"))
    assert r.status_code == 200 and r.json["recorded"] is True
    assert api.get(f"/broadcasts/{broadcast_id}").json["status"] == "scheduled"


def test_a_cancel_of_an_alert_never_received_is_not_found_and_writes_nothing(
    api: Api, loa: Loa
) -> None:
    r = send(api, CANCEL)
    assert r.status_code == 404 and r.json["error"] == "unknown_alert"
    assert "TTKTTV-TH-2026-1126-0755" in r.json["detail"]
    assert rows(loa) == (0, 0, 0)


def test_an_update_airs_anew_and_cancels_what_the_earlier_alert_had_waiting(
    api: Api, loa: Loa
) -> None:
    (earlier,) = send(api, FLOOD).json["broadcasts"]
    update_xml = (
        FLOOD.replace("TTKTTV-TH-2026-1126-0755", "TTKTTV-TH-2026-1126-0759")
        .replace("<sent>2026-11-26T07:55:00+07:00</sent>", "<sent>2026-11-26T07:59:00+07:00</sent>")
        .replace(
            "<msgType>Alert</msgType>",
            "<msgType>Update</msgType><references>canhbao@kttv-thanhhoa.gov.vn,"
            "TTKTTV-TH-2026-1126-0755,2026-11-26T07:55:00+07:00</references>",
        )
        .replace("6 giờ tới", "3 giờ tới")
    )
    r = send(api, update_xml)
    assert r.status_code == 201, r.json
    assert r.json["superseded"] == 1
    assert api.get(f"/broadcasts/{earlier}").json["status"] == "cancelled"
    (later,) = r.json["broadcasts"]
    assert api.get(f"/broadcasts/{later}").json["status"] == "scheduled"


INVALID = {
    "not XML": ("<alert>unclosed", "not well-formed"),
    "no sender": (FLOOD.replace("<sender>canhbao@kttv-thanhhoa.gov.vn</sender>", ""),
                  "alert/sender"),
    "no event": (FLOOD.replace("<event>Lũ quét</event>", ""), "alert/info[2]/event"),
    "no areaDesc": (FLOOD.replace("<areaDesc>Xã Thọ Sơn, huyện Triệu Sơn</areaDesc>", ""),
                    "alert/info[2]/area[1]/areaDesc"),
    "bad status": (FLOOD.replace("<status>Actual</status>", "<status>Real</status>"),
                   "alert/status"),
    "sent without offset": (FLOOD.replace("07:55:00+07:00</sent>", "07:55:00</sent>"),
                            "alert/sent"),
    "bad urgency": (FLOOD.replace("<urgency>Immediate</urgency>", "<urgency>Now</urgency>", 1),
                    "alert/info[1]/urgency"),
    "CAP 1.1": (FLOOD.replace("cap:1.2", "cap:1.1"), "namespace"),
    "no namespace": (FLOOD.replace(' xmlns="urn:oasis:names:tc:emergency:cap:1.2"', ""),
                     "namespace"),
    "XXE": (XXE, "DOCTYPE"),
    "entity bomb": (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&lol2;</alert>',
        "DOCTYPE",
    ),
    "empty": ("", "empty"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(INVALID))
def test_a_malformed_or_invalid_document_is_refused_naming_what_is_wrong(
    api: Api, loa: Loa, case: str
) -> None:
    xml, named = INVALID[case]
    r = send(api, xml)
    assert r.status_code == 400, r.json
    assert r.json["error"] == "invalid_cap" and named in r.json["detail"], r.json
    assert "root:" not in r.json["detail"]  # no file was read into the answer
    assert rows(loa) == (0, 0, 0)


def test_an_expired_alert_is_refused_and_nothing_is_written(api: Api, loa: Loa) -> None:
    expired = FLOOD.replace("2026-11-26T20:00:00+07:00", "2026-11-26T07:59:00+07:00")
    r = send(api, expired)
    assert r.status_code == 422 and r.json["error"] == "cap_expired"
    assert rows(loa) == (0, 0, 0)


def test_an_alert_whose_areas_name_no_commune_is_refused_with_their_names(
    api: Api, loa: Loa
) -> None:
    nowhere = STORM.replace("Xã Thọ Bình; THO TIEN", "Phường Ba Đình")
    r = send(api, nowhere)
    assert r.status_code == 422 and r.json["error"] == "unknown_areas"
    assert r.json["unknown_areas"] == ["Phường Ba Đình", "Xã Hòa Bình Xa Lạ"]
    assert rows(loa) == (0, 0, 0)


def test_an_alert_not_for_the_public_is_not_aired(api: Api, loa: Loa) -> None:
    private = FLOOD.replace("<scope>Public</scope>", "<scope>Restricted</scope>")
    r = send(api, private)
    assert r.status_code == 422 and r.json["error"] == "cap_not_public"
    assert rows(loa) == (0, 0, 0)


def test_an_alert_that_cannot_be_spoken_leaves_nothing_behind(
    api: Api, loa: Loa, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise TtsError("no engine could speak the text")

    monkeypatch.setattr(loa.renderer, "render", fail)
    r = send(api, FLOOD)
    assert r.status_code == 503 and r.json["error"] == "speech_unavailable"
    assert rows(loa) == (0, 0, 0)
    monkeypatch.undo()
    assert send(api, FLOOD).status_code == 201  # the centre's retry airs it


def test_only_the_centre_or_an_administrator_may_send_alerts_and_only_as_xml(
    api: Api, api_for: Any, loa: Loa
) -> None:
    r = send(api_for("operator", THO_SON), FLOOD)
    assert r.status_code == 403
    r = api.post("/alerts/cap", {"alert": "json"})
    assert r.status_code == 415 and r.json["error"] == "unsupported_media_type"
    assert rows(loa) == (0, 0, 0)


# --- the pure parts ------------------------------------------------------------------------

TRIEU_SON = [
    (THO_SON, "Xã Thọ Sơn"),
    (THO_BINH, "Xã Thọ Bình"),
    ("15001", "Thị trấn Triệu Sơn"),
    ("15002", "Xã Xa Loan"),
    ("15003", "Xã Thái Hòa"),
    ("99999", "Xã Thọ Sơn"),  # the same name in another district
    ("99998", "Xã Minh Khai"),
    ("99997", "Phường Minh Khai"),
]


@pytest.mark.parametrize(
    ("desc", "codes", "unknown"),
    [
        ("Thọ Bình", [THO_BINH], []),
        ("triệu sơn", ["15001"], []),
        ("Xa Loan", ["15002"], []),  # a name that begins like the prefix "Xã"
        ("Xã Thái Hoà", ["15003"], []),  # the other tone-mark placement
        ("THAI HOA; Thọ Bình", ["15003", THO_BINH], []),
        ("Huyện Triệu Sơn", [], ["Huyện Triệu Sơn"]),  # a district is not its town
        ("Thọ Sơn", [], ["Thọ Sơn"]),  # two communes: not guessed
        ("Xã Minh Khai", ["99998"], []),  # the prefix tells them apart
    ],
)
def test_area_names_match_communes_and_ambiguity_is_not_guessed(
    desc: str, codes: list[str], unknown: list[str]
) -> None:
    match = cap.match_areas([cap.CapArea(desc)], TRIEU_SON)
    assert (list(match.codes), list(match.unknown)) == (codes, unknown)


def test_a_geocode_names_a_commune_by_its_code_whatever_its_value_name() -> None:
    area = cap.CapArea("Thọ Sơn", (cap.Geocode("ADM3", "99999"), cap.Geocode("SAME", "006113")))
    match = cap.match_areas([area], TRIEU_SON)
    assert match.codes == ("99999",) and match.unknown == ()


def test_the_vietnamese_info_is_read_else_the_first() -> None:
    message = cap.parse(FLOOD.encode())
    assert [i.language for i in message.infos] == ["en-US", "vi-VN"]
    info = cap.choose_info(message)
    assert info is not None and info.event == "Lũ quét"
    english_only = cap.parse(FLOOD.replace("vi-VN", "fr-FR").encode())
    first = cap.choose_info(english_only)
    assert first is not None and first.event == "Flash flood"
    title, text = cap.bulletin_text(first)
    assert (title, text) == (
        "Flash flood warning for Tho Son commune",
        "Flash flood warning for Tho Son commune",
    )

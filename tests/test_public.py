"""For citizens who missed the loudspeaker: each commune's public page and podcast feed,
with what it aired lately; nothing planned, nothing of another commune, no login."""

import xml.etree.ElementTree as ET

from flask.testing import FlaskClient

from scheduler.context import Loa
from tests.conftest import THO_BINH, THO_SON, Api, later


def aired_yesterday(api: Api, loa: Loa) -> dict[str, int]:
    """Thọ Sơn aired one bulletin; Thọ Bình missed another; one is still to come."""
    aired = api.approved_bulletin("Lịch tiếp công dân của xã tuần này.", topic="CCHC")
    other = api.approved_bulletin("Thông báo riêng của xã Thọ Bình.")
    coming = api.approved_bulletin("Thông báo sẽ phát ngày mai.")
    ids = {}
    for name, bulletin, code in (("aired", aired, THO_SON), ("other", other, THO_BINH)):
        (b,) = api.post(
            "/broadcasts", {"bulletin_id": bulletin, "communes": [code], "at": later(loa, 60)}
        ).json
        ids[name] = b["id"]
    loa.clock.advance(120)  # type: ignore[attr-defined]
    assert api.post(f"/broadcasts/{ids['aired']}/confirm", {"aired": True}).status_code == 200
    r = api.post(f"/broadcasts/{ids['other']}/confirm", {"aired": True})
    assert r.status_code == 200
    (b,) = api.post(
        "/broadcasts", {"bulletin_id": coming, "communes": [THO_SON], "at": later(loa, 86400)}
    ).json
    ids["coming"] = b["id"]
    loa.clock.advance(86400 - 600)  # type: ignore[attr-defined]  # the next morning
    return ids


def test_a_citizen_plays_yesterdays_bulletin_from_the_communes_page(
    api: Api, client: FlaskClient, loa: Loa
) -> None:
    ids = aired_yesterday(api, loa)
    page = client.get(f"/c/{THO_SON}")  # no login
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Bản tin loa truyền thanh Xã Thọ Sơn" in html
    assert "<strong>Thông báo</strong>" in html and "CCHC" in html
    assert " · 0:0" in html and "1 phút" not in html  # a few seconds, as a player says it
    assert f"/c/{THO_SON}/audio/{ids['aired']}.mp3" in html
    assert f"/audio/{ids['coming']}.mp3" not in html  # not aired yet
    assert f"/audio/{ids['other']}.mp3" not in html  # another commune's
    mp3 = client.get(f"/c/{THO_SON}/audio/{ids['aired']}.mp3")
    assert mp3.status_code == 200 and mp3.mimetype == "audio/mpeg" and len(mp3.data) > 1000


def test_the_podcast_feed_has_an_mp3_enclosure_per_aired_bulletin(
    api: Api, client: FlaskClient, loa: Loa
) -> None:
    ids = aired_yesterday(api, loa)
    r = client.get(f"/c/{THO_SON}/podcast.xml")
    assert r.status_code == 200 and r.mimetype == "application/rss+xml"
    rss = ET.fromstring(r.data)
    assert rss.tag == "rss" and rss.get("version") == "2.0"
    (item,) = rss.iter("item")
    enclosure = item.find("enclosure")
    assert enclosure is not None and enclosure.get("type") == "audio/mpeg"
    url = enclosure.get("url") or ""
    assert url.startswith("http://localhost/c/") and url.endswith(f"/audio/{ids['aired']}.mp3")
    audio = client.get(url.removeprefix("http://localhost"))
    assert audio.status_code == 200 and str(len(audio.data)) == enclosure.get("length")
    assert item.findtext("pubDate", "").endswith("+0000")


def test_what_was_not_aired_there_is_not_served(api: Api, client: FlaskClient, loa: Loa) -> None:
    ids = aired_yesterday(api, loa)
    assert client.get(f"/c/{THO_SON}/audio/{ids['coming']}.mp3").status_code == 404
    assert client.get(f"/c/{THO_SON}/audio/{ids['other']}.mp3").status_code == 404
    assert client.get("/c/99999").status_code == 404
    assert client.get("/c/99999/podcast.xml").status_code == 404


def test_a_missing_page_is_explained_in_vietnamese_and_the_api_still_answers_json(
    client: FlaskClient,
) -> None:
    page = client.get("/c/99999")
    assert page.status_code == 404 and "Không tìm thấy trang" in page.get_data(as_text=True)
    api = client.get("/api/v1/nothing-here")
    assert api.status_code == 404 and api.json is not None and api.json["error"] == "not_found"

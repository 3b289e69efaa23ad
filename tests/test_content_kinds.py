"""What a placement plays besides speech: an uploaded recording and a relay (tiếp sóng).

The clock stands at Thursday 2026-11-26 08:00 in Triệu Sơn."""

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydub import AudioSegment
from sqlalchemy import select

from audio.loudness import integrated_loudness, true_peak
from audio.master import SAMPLE_RATE, to_signal
from scheduler import dispatch
from scheduler.context import Loa
from scheduler.models import Broadcast, Bulletin
from tests.conftest import THO_SON, Api
from web.api.endpoints import schedule_documents

pytestmark = pytest.mark.both_databases

STREAM = "http://radio.thanhhoa.example/live.mp3"
MORNING = {"from": "2026-11-27", "to": "2026-11-27"}


def tone(tmp_path: Path, suffix: str, seconds: float = 3.0, *codec: str) -> bytes:
    """A quiet tone with silence around it, encoded as the suffix says."""
    path = tmp_path / f"tone{suffix}"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency=500:duration={seconds},volume=-10dB,adelay=500,apad=pad_dur=0.5",
         "-ac", "2", "-ar", "44100", *codec, str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


def upload(api: Api, data: bytes, name: str, **form: str) -> Any:
    fields = {"title": "Lời kêu gọi của Chủ tịch xã", **form, "file": (io.BytesIO(data), name)}
    return api.post("/bulletins", data=fields, content_type="multipart/form-data")


def morning_slot(api: Api) -> int:
    return next(s["id"] for s in api.get("/slots").json if s["start"] == "05:30")


def place_morning(api: Api, bulletin_id: int) -> Any:
    assert api.post(f"/bulletins/{bulletin_id}/approve").status_code == 200
    rule = {"slots": [morning_slot(api)], **MORNING}
    r = api.post("/placements", {"bulletin_id": bulletin_id, "rule": rule, "communes": [THO_SON]})
    assert r.status_code == 201, r.json
    return r.json


@pytest.mark.parametrize(
    ("suffix", "codec"),
    [(".mp3", ()), (".wav", ()), (".ogg", ("-c:a", "libvorbis"))],
)
def test_an_uploaded_recording_is_mastered_like_speech_and_queued_by_its_length(
    api: Api, loa: Loa, tmp_path: Path, suffix: str, codec: tuple[str, ...]
) -> None:
    r = upload(api, tone(tmp_path, suffix, 3.0, *codec), f"loi-keu-goi{suffix}", topic="CCHC")
    assert r.status_code == 201, r.json
    assert (r.json["kind"], r.json["status"], r.json["audio"]["engine"]) == (
        "recording",
        "draft",
        "upload",
    )
    audio = r.json["audio"]
    assert 2.8 <= audio["duration_seconds"] <= 3.2  # the silence around it is trimmed
    mp3 = tmp_path / "served.mp3"
    served = api.client.get(audio["url"], headers={"Authorization": f"Bearer {api.token}"})
    assert served.status_code == 200, served.data[:200]
    mp3.write_bytes(served.data)
    x = to_signal(AudioSegment.from_file(str(mp3)))
    assert integrated_loudness(x, SAMPLE_RATE) == pytest.approx(-16, abs=1)
    assert true_peak(x) <= -1.0
    placed = place_morning(api, r.json["id"])
    assert placed["broadcasts"] == 1
    row = api.get(f"/plan?from=2026-11-27&to=2026-11-27&commune={THO_SON}").json[0]
    assert row["bulletin_id"] == r.json["id"] and row["scheduled_at"].endswith("05:30:00+07:00")


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (b"", "empty.mp3", "empty"),
        ("Thông báo bằng chữ, không phải âm thanh.".encode(), "thong-bao.mp3", "not MP3, WAV"),
        (b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 8, "hong.wav", "cannot read the file"),
    ],
)
def test_a_file_that_is_not_mp3_wav_or_ogg_audio_is_refused_and_nothing_is_kept(
    api: Api, loa: Loa, data: bytes, name: str, reason: str
) -> None:
    r = upload(api, data, name)
    assert r.status_code == 422 and r.json["error"] == "invalid_audio", r.json
    assert reason in r.json["detail"]
    with loa.transaction() as session:
        assert session.scalars(select(Bulletin)).all() == []
    assert [p.name for p in (loa.settings.audio_dir / "recordings").glob("*")] == []


def test_other_audio_formats_are_refused_by_content_whatever_their_name(
    api: Api, tmp_path: Path
) -> None:
    flac = tone(tmp_path, ".flac")
    r = upload(api, flac, "renamed.mp3")
    assert r.status_code == 422 and "not MP3, WAV or OGG" in r.json["detail"]


def test_a_recording_has_no_text_to_speak_and_a_new_file_returns_it_to_draft(
    api: Api, loa: Loa, tmp_path: Path
) -> None:
    first = upload(api, tone(tmp_path, ".wav", 2.0), "a.wav").json
    assert api.post(f"/bulletins/{first['id']}/audio", {}).json["error"] == "not_speech"
    place_morning(api, first["id"])
    replaced = api.post(
        f"/bulletins/{first['id']}/audio",
        data={"file": (io.BytesIO(tone(tmp_path, ".mp3", 4.0)), "b.mp3")},
        content_type="multipart/form-data",
    )
    assert replaced.status_code == 200, replaced.json
    assert api.get(f"/bulletins/{first['id']}").json["status"] == "draft"
    with loa.transaction() as session:  # what is placed keeps the approved file until then
        (broadcast,) = session.scalars(select(Broadcast)).all()
        assert broadcast.audio.sha256 == first["audio"]["sha256"]
    assert api.post(f"/bulletins/{first['id']}/approve").status_code == 200
    with loa.transaction() as session:
        (broadcast,) = session.scalars(select(Broadcast)).all()
        assert broadcast.audio.sha256 == replaced.json["sha256"]


def relay(api: Api, **fields: Any) -> Any:
    body = {"kind": "relay", "title": "Tiếp sóng Đài tỉnh", "stream_url": STREAM,
            "duration_seconds": 900, **fields}  # fmt: skip
    return api.post("/bulletins", body)


def test_a_relay_holds_its_slot_for_its_duration_and_endpoints_get_the_stream(
    api: Api, loa: Loa
) -> None:
    r = relay(api)
    assert r.status_code == 201, r.json
    assert r.json["kind"] == "relay"
    assert r.json["audio"] == {"stream_url": STREAM, "duration_seconds": 900}
    place_morning(api, r.json["id"])
    speech = api.approved_bulletin()
    place_morning(api, speech)
    plan = api.get(f"/plan?from=2026-11-27&to=2026-11-27&commune={THO_SON}").json
    assert [row["scheduled_at"][11:19] for row in plan] == ["05:30:00", "05:45:01"]
    endpoint = api.post("/endpoints", {"commune": THO_SON, "name": "Cụm 1", "kind": "agent"}).json
    item = schedule_documents(loa, [endpoint["id"]], "")[endpoint["id"]]["items"][0]
    assert (item["stream_url"], item["audio_url"], item["sha256"]) == (STREAM, None, None)
    assert item["duration_seconds"] == 900
    with loa.transaction() as session:
        items = dispatch.items_by_kind(session, Broadcast.id.isnot(None), loa)["agent"]
    relays = [i for i in items if i.stream_url]
    assert [(i.stream_url, i.audio_path, i.duration_seconds) for i in relays] == [
        (STREAM, None, 900)
    ]


@pytest.mark.parametrize(
    ("fields", "status", "error"),
    [
        ({"stream_url": "ftp://radio.example/live"}, 422, "invalid_stream_url"),
        ({"stream_url": "http://user:secret@radio.example/live"}, 422, "invalid_stream_url"),
        ({"duration_seconds": 0}, 400, "invalid_body"),
        ({"duration_seconds": 5 * 3600}, 400, "invalid_body"),
    ],
)
def test_a_bad_relay_is_refused_with_the_reason(
    api: Api, loa: Loa, fields: dict[str, Any], status: int, error: str
) -> None:
    r = relay(api, **fields)
    assert r.status_code == status and r.json["error"] == error, r.json
    with loa.transaction() as session:
        assert session.scalars(select(Bulletin)).all() == []


def test_changing_a_relays_stream_returns_it_to_draft(api: Api) -> None:
    b = relay(api).json["id"]
    assert api.post(f"/bulletins/{b}/approve").status_code == 200
    r = api.call("PATCH", f"/bulletins/{b}", {"duration_seconds": 600})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "draft"
    assert r.json["audio"] == {"stream_url": STREAM, "duration_seconds": 600}
    unchanged = api.call("PATCH", f"/bulletins/{b}", {"topic": "Thời sự"}).json
    assert unchanged["audio"]["duration_seconds"] == 600

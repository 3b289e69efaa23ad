"""The local driver plays on the server's sound card through ALSA. The card is faked at
one seam, the device: ALSA's `null` PCM takes the audio the way a card would."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audio.playout import PlayEvent
from scheduler.drivers.base import DriverError, PlayItem
from scheduler.drivers.local import LocalDriver, alsa_device
from scheduler.models import Priority

pytestmark = pytest.mark.realtime  # scripts/test runs it one test at a time

ENDPOINT = 7


def now() -> datetime:
    return datetime.now(UTC)


class Recorder:
    """The events a driver reports, as the as-run log would receive them."""

    def __init__(self) -> None:
        self.events: list[tuple[int, PlayEvent]] = []
        self.changed = threading.Condition()

    def __call__(self, endpoint_id: int, event: PlayEvent) -> None:
        with self.changed:
            self.events.append((endpoint_id, event))
            self.changed.notify_all()

    def kinds(self) -> list[tuple[str, str]]:
        with self.changed:
            return [(e.key, e.kind) for _, e in self.events]

    def event(self, key: str, kind: str, timeout: float = 15) -> PlayEvent:
        def found() -> PlayEvent | None:
            return next((e for _, e in self.events if (e.key, e.kind) == (key, kind)), None)

        with self.changed:
            assert self.changed.wait_for(lambda: found() is not None, timeout), self.kinds()
            event = found()
            assert event is not None
            return event


def tones(directory: Path) -> Callable[[float], Path]:
    """MP3s of a tone lasting the given seconds, as the audio store would hold them."""

    def make(seconds: float) -> Path:
        path = directory / f"tone-{seconds}.mp3"
        if not path.exists():
            subprocess.run(
                ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", f"sine=f=440:d={seconds}",
                 "-ac", "1", "-ar", "22050", "-b:a", "64k", str(path)],
                check=True,
            )  # fmt: skip
        return path

    return make


@pytest.fixture(scope="module")
def tone(tmp_path_factory: pytest.TempPathFactory) -> Callable[[float], Path]:
    return tones(tmp_path_factory.mktemp("tones"))


def item(
    delivery_id: int, audio: Path, seconds: float, priority: Priority = Priority.NORMAL
) -> PlayItem:
    at = now()
    return PlayItem(
        delivery_id=delivery_id, broadcast_id=delivery_id, endpoint_id=ENDPOINT,
        title=f"Bản tin {delivery_id}", priority=priority, scheduled_at=at,
        play_until=at + timedelta(seconds=60), audio_path=audio, sha256="-",
        duration_seconds=seconds, delivered=True,
    )  # fmt: skip


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def local(recorder: Recorder) -> Iterator[Callable[[str | None], LocalDriver]]:
    made: list[LocalDriver] = []

    def make(address: str | None) -> LocalDriver:
        made.append(LocalDriver(recorder, now, lambda endpoint_id: address))
        return made[-1]

    yield make
    for driver in made:
        driver.close()


def test_an_item_plays_on_the_device_for_its_length_and_ffmpeg_vouches_for_it(
    local: Callable[[str | None], LocalDriver], recorder: Recorder, tone: Callable[[float], Path]
) -> None:
    local("null").start(item(1, tone(1.5), 1.5))
    started = recorder.event("1", "started")
    finished = recorder.event("1", "finished")
    assert abs((finished.at - started.at).total_seconds() - 1.5) < 0.5
    assert finished.detail == "ffmpeg wrote 1.5 s of audio to ALSA device 'null'"


def test_an_emergency_interrupts_what_plays_on_the_card(
    local: Callable[[str | None], LocalDriver], recorder: Recorder, tone: Callable[[float], Path]
) -> None:
    driver = local("null")
    driver.start(item(1, tone(6), 6))
    recorder.event("1", "started")
    time.sleep(1)
    driver.start(item(2, tone(1), 1, Priority.EMERGENCY))
    interrupted = recorder.event("1", "interrupted")
    assert interrupted.detail is not None
    assert re.fullmatch(
        r"interrupted by Bản tin 2; ffmpeg wrote [01]\.\d s of audio to ALSA device 'null'",
        interrupted.detail,
    )
    recorder.event("2", "finished")
    assert recorder.kinds() == [("1", "started"), ("1", "interrupted"),
                                ("2", "started"), ("2", "finished")]  # fmt: skip


def test_items_due_together_play_back_to_back_in_priority_order(
    local: Callable[[str | None], LocalDriver], recorder: Recorder, tone: Callable[[float], Path]
) -> None:
    driver = local("null")
    driver.start(item(1, tone(0.5), 0.5))
    driver.start(item(3, tone(0.5), 0.5))
    driver.start(item(2, tone(0.5), 0.5, Priority.PRIORITY))
    recorder.event("3", "finished")
    assert [key for key, kind in recorder.kinds() if kind == "started"] == ["2", "1", "3"]
    ends = {e.key: e.at for _, e in recorder.events if e.kind == "finished"}
    starts = {e.key: e.at for _, e in recorder.events if e.kind == "started"}
    assert (starts["1"] - ends["2"]).total_seconds() < 0.2


def test_an_unknown_device_fails_the_item_with_alsas_words(
    local: Callable[[str | None], LocalDriver], recorder: Recorder, tone: Callable[[float], Path]
) -> None:
    local("no-such-card").start(item(1, tone(1), 1))
    failed = recorder.event("1", "failed")
    assert failed.detail is not None and "no-such-card" in failed.detail


def test_the_device_is_the_address_or_the_default_card() -> None:
    assert alsa_device(None) == alsa_device(" ") == "default"
    assert alsa_device("plughw:1,0") == "plughw:1,0"
    with pytest.raises(DriverError) as refused:
        alsa_device("-y /etc/passwd")
    assert refused.value.permanent


def test_a_missing_audio_file_is_refused_at_once_for_good(
    local: Callable[[str | None], LocalDriver], tmp_path: Path
) -> None:
    with pytest.raises(DriverError) as refused:
        local("null").start(item(1, tmp_path / "gone.mp3", 1))
    assert refused.value.permanent


def test_an_emergency_on_a_silent_card_starts_at_once(
    local: Callable[[str | None], LocalDriver], recorder: Recorder, tone: Callable[[float], Path]
) -> None:
    asked = now()
    local("null").start(item(1, tone(0.5), 0.5, Priority.EMERGENCY))
    assert (recorder.event("1", "started").at - asked).total_seconds() < 0.1

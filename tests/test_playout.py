import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audio.playout import (
    Cue,
    OutputError,
    PlayEvent,
    Playout,
    SilentOutput,
    file_sink_output,
)
from tests.conftest import audio_duration

pytestmark = pytest.mark.realtime  # scripts/test runs it one test at a time


def now() -> datetime:
    return datetime.now(UTC)


def cue(
    key: str, seconds: float, rank: int = 0, path: Path = Path("/dev/null"), late: float = 60
) -> Cue:
    t = now()
    return Cue(key, path, seconds, rank, t, t + timedelta(seconds=late), label=key)


class Recorder:
    def __init__(self) -> None:
        self.events: list[PlayEvent] = []
        self.changed = threading.Condition()

    def __call__(self, event: PlayEvent) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def kinds(self) -> list[tuple[str, str]]:
        return [(e.key, e.kind) for e in self.events]

    def wait_for(self, count: int, timeout: float = 10) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.events) >= count, timeout), self.kinds()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_cues_play_one_after_another_for_their_duration(recorder: Recorder) -> None:
    playout = Playout(SilentOutput(), recorder, now)
    playout.start()
    begin = time.monotonic()
    playout.submit(cue("a", 0.3))
    playout.submit(cue("b", 0.3))
    recorder.wait_for(4)
    playout.close()
    assert recorder.kinds() == [
        ("a", "started"),
        ("a", "finished"),
        ("b", "started"),
        ("b", "finished"),
    ]
    assert time.monotonic() - begin >= 0.6


def test_priority_goes_first_among_waiting_cues(recorder: Recorder) -> None:
    playout = Playout(SilentOutput(), recorder, now)
    playout.submit(cue("normal", 0.05))
    playout.submit(cue("priority", 0.05, rank=1))
    playout.start()
    recorder.wait_for(4)
    playout.close()
    assert recorder.kinds()[0] == ("priority", "started")


def test_an_emergency_interrupts_what_plays(recorder: Recorder) -> None:
    playout = Playout(SilentOutput(), recorder, now)
    playout.start()
    playout.submit(cue("normal", 30))
    recorder.wait_for(1)
    playout.submit(cue("alarm", 0.1, rank=2))
    recorder.wait_for(4)
    playout.close()
    assert recorder.kinds() == [
        ("normal", "started"),
        ("normal", "interrupted"),
        ("alarm", "started"),
        ("alarm", "finished"),
    ]
    assert recorder.events[1].detail == "interrupted by alarm"


def test_a_cue_past_its_latest_start_is_missed_not_aired(recorder: Recorder) -> None:
    playout = Playout(SilentOutput(), recorder, now)
    playout.start()
    playout.submit(cue("stale", 1, late=-1))
    recorder.wait_for(1)
    playout.close()
    assert recorder.kinds() == [("stale", "missed")]


def test_an_output_failure_is_reported(recorder: Recorder) -> None:
    class Broken:
        def play(self, cue: Cue, stop: threading.Event) -> None:
            raise OutputError("no sound card")

    playout = Playout(Broken(), recorder, now)
    playout.start()
    playout.submit(cue("x", 1))
    recorder.wait_for(2)
    playout.close()
    assert recorder.kinds() == [("x", "started"), ("x", "failed")]
    assert recorder.events[1].detail == "no sound card"


def tone(path: Path, seconds: float) -> Path:
    sine = f"sine=frequency=440:duration={seconds}"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", sine, "-ac", "1", str(path)],
        check=True,
    )
    return path


def test_the_file_sink_plays_in_real_time_into_one_mp3_per_cue(
    tmp_path: Path, recorder: Recorder
) -> None:
    audio = tone(tmp_path / "tone.mp3", 1.5)
    playout = Playout(file_sink_output(tmp_path / "sink"), recorder, now)
    playout.start()
    begin = time.monotonic()
    playout.submit(cue("7", 1.5, path=audio))
    recorder.wait_for(2)
    elapsed = time.monotonic() - begin
    playout.close()
    (played,) = (tmp_path / "sink").glob("*-7.mp3")
    assert elapsed >= 1.4
    assert abs(audio_duration(played) - 1.5) < 0.2


def test_an_interruption_cuts_the_sink_file_short(tmp_path: Path, recorder: Recorder) -> None:
    audio = tone(tmp_path / "tone.mp3", 20)
    playout = Playout(file_sink_output(tmp_path / "sink"), recorder, now)
    playout.start()
    playout.submit(cue("long", 20, path=audio))
    recorder.wait_for(1)
    time.sleep(1.0)
    playout.cancel("long")
    recorder.wait_for(2)
    playout.close()
    assert recorder.kinds() == [("long", "started"), ("long", "interrupted")]
    (played,) = (tmp_path / "sink").glob("*-long.mp3")
    assert 0.5 < audio_duration(played) < 3

"""The icecast driver streams to a real icecast2 server with ffmpeg as the source; a
listener reads the stream with ffprobe, and the server's own view is the proof of play."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scheduler.drivers.base import DriverError
from scheduler.drivers.icecast import IcecastDriver, Mount
from scheduler.models import Priority
from tests.icecast_server import IcecastServer, running_icecast
from tests.test_local_driver import Recorder, item, now, tones

pytestmark = pytest.mark.realtime  # scripts/test runs it one test at a time

MOUNT = "thoson.mp3"


@pytest.fixture
def icecast() -> Iterator[IcecastServer]:
    with running_icecast() as server:
        yield server


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def tone(tmp_path_factory: pytest.TempPathFactory) -> Callable[[float], Path]:
    return tones(tmp_path_factory.mktemp("tones"))


@pytest.fixture
def streaming(
    icecast: IcecastServer, recorder: Recorder
) -> Iterator[Callable[[str], IcecastDriver]]:
    made: list[IcecastDriver] = []

    def make(address: str) -> IcecastDriver:
        made.append(IcecastDriver(recorder, now, lambda endpoint_id: address))
        return made[-1]

    yield make
    for driver in made:
        driver.close()


def wait_for_title(mount: Mount, title: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while (stats := mount.stats()) is None or stats.get("title") != title:
        assert time.monotonic() < deadline, stats
        time.sleep(0.1)


def test_a_listener_hears_valid_mp3_while_an_item_streams_and_icecast_vouches_for_it(
    icecast: IcecastServer,
    streaming: Callable[[str], IcecastDriver],
    recorder: Recorder,
    tone: Callable[[float], Path],
) -> None:
    address = icecast.mount_address(MOUNT)
    streaming(address).start(item(12, tone(4), 4))
    wait_for_title(Mount.parse(address), "Bản tin 12")
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-read_intervals", "%+1", "-count_packets", "-show_entries",
         "stream=codec_name,sample_rate,channels,nb_read_packets", "-of", "json",
         icecast.listen_url(MOUNT)],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    assert probe.stderr == ""  # not one damaged frame
    (stream,) = json.loads(probe.stdout)["streams"]
    frames = int(stream.pop("nb_read_packets"))
    assert stream == {"codec_name": "mp3", "sample_rate": "22050", "channels": 1}
    assert frames > 30  # a second of MPEG-2 layer III at 22.05 kHz is 38 frames
    started, finished = recorder.event("12", "started"), recorder.event("12", "finished")
    assert abs((finished.at - started.at).total_seconds() - 4) < 0.7
    assert finished.detail is not None
    assert finished.detail.startswith(
        f"icecast listed the source 'Loa delivery 12' on 127.0.0.1:{icecast.port}/{MOUNT}, "
        "on air from 20"
    )
    assert "title 'Bản tin 12', listener peak 1" in finished.detail
    assert re.search(r"; ffmpeg sent 4\.0 s of audio \([\d,]+ bytes\)$", finished.detail)
    assert f'Source logging in at mountpoint "/{MOUNT}"' in icecast.log("error.log")
    assert f"|/{MOUNT}|" in icecast.log("playlist.log")


def test_an_emergency_interrupts_what_streams(
    icecast: IcecastServer,
    streaming: Callable[[str], IcecastDriver],
    recorder: Recorder,
    tone: Callable[[float], Path],
) -> None:
    address = icecast.mount_address(MOUNT)
    driver = streaming(address)
    driver.start(item(1, tone(8), 8))
    wait_for_title(Mount.parse(address), "Bản tin 1")
    asked = now()
    driver.start(item(2, tone(1.5), 1.5, Priority.EMERGENCY))
    wait_for_title(Mount.parse(address), "Bản tin 2")
    assert (now() - asked).total_seconds() < 2
    interrupted = recorder.event("1", "interrupted")
    assert interrupted.detail is not None
    assert interrupted.detail.startswith("interrupted by Bản tin 2; icecast listed the source")
    finished = recorder.event("2", "finished")
    assert finished.detail is not None and "'Loa delivery 2'" in finished.detail
    assert recorder.kinds() == [("1", "started"), ("1", "interrupted"),
                                ("2", "started"), ("2", "finished")]  # fmt: skip


def test_a_refused_source_fails_the_item_with_icecasts_answer_and_no_password(
    icecast: IcecastServer,
    streaming: Callable[[str], IcecastDriver],
    recorder: Recorder,
    tone: Callable[[float], Path],
) -> None:
    streaming(icecast.mount_address(MOUNT, password="wrong")).start(item(1, tone(1), 1))
    failed = recorder.event("1", "failed")
    assert failed.detail == (
        f"ffmpeg exited with 1: icecast://127.0.0.1:{icecast.port}/{MOUNT}: "
        "Server returned 401 Unauthorized (authorization failed)"
    )


def test_a_malformed_mount_address_is_refused_for_good_without_showing_its_password() -> None:
    for address in (None, "http://source:pw@host:8000/m.mp3", "icecast://source:secret@host/m",
                    "icecast://host:8000/m.mp3", "icecast://source:secret@host:8000/"):  # fmt: skip
        with pytest.raises(DriverError) as refused:
            Mount.parse(address)
        assert refused.value.permanent and "secret" not in str(refused.value)
    mount = Mount.parse("icecast://source:p%40ss@127.0.0.1:8000/thoson.mp3")
    assert (mount.server, mount.path, mount.user, mount.password) == (
        "127.0.0.1:8000",
        "/thoson.mp3",
        "source",
        "p@ss",
    )
    assert str(mount) == "127.0.0.1:8000/thoson.mp3"

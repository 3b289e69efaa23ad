"""The server's own sound card, for district studios wired to an FM transmitter.

Each item is played by `ffmpeg -re -i FILE -f alsa DEVICE` (a relay: `-i pipe:0`, its live
stream fed to ffmpeg as it arrives); the device is the endpoint's address (`default` when
empty; e.g. `plughw:1,0`). ALSA's `null` device runs the same path with the audio
discarded. Proof of play is what ffmpeg says it wrote to the device (and, for a relay,
the bytes received from the stream).
"""

from __future__ import annotations

from audio.playout import Output, alsa_output
from scheduler.drivers.base import DriverError
from scheduler.drivers.playout import PlayoutDriver


def alsa_device(address: str | None) -> str:
    device = (address or "").strip() or "default"
    if device.startswith("-") or not device.isprintable() or " " in device:
        raise DriverError(f"{device!r} is not an ALSA device name", permanent=True)
    return device


class LocalDriver(PlayoutDriver):
    kind = "local"

    def output(self, address: str | None) -> Output:
        return alsa_output(alsa_device(address))

"""Icecast: at its time each item is streamed to the commune's mount on an icecast2 server.

The endpoint's address is the mount URL, `icecast://source:PASSWORD@HOST:PORT/MOUNT`.
ffmpeg is the source client (`-re`, so it streams in real time); each item is one source
connection, so receivers reconnect between items (a `<fallback-mount>` with
`<fallback-override>` on the server keeps them attached).

Proof of play is the server's own view of the stream. While an item streams, the
mount's statistics are read from `/admin/stats?mount=…`, which icecast answers to the
mount's source credentials: the source must be listed with this delivery's user agent
("Loa delivery 12"). The item's title is set as the stream's metadata, so listeners see
it and the server's playlist log records it. What was found is the event's detail; an
item icecast never listed is failed, even if ffmpeg said nothing.

A relay item (tiếp sóng) is re-streamed: its live stream goes into ffmpeg's stdin and is
encoded like a bulletin (MP3, mono, 22,050 Hz) whatever it was; the bytes received from
the stream are part of the proof.
"""

from __future__ import annotations

import base64
import html
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import unquote, urlencode, urlsplit
from urllib.request import Request, urlopen

from audio.master import BITRATE, SAMPLE_RATE
from audio.playout import Cue, FfmpegPlayer, Output, OutputError, Relay, audio_file
from scheduler.drivers.base import DriverError
from scheduler.drivers.playout import PlayoutDriver

HTTP_TIMEOUT = 1.0  # a stats call holds up an interruption at most this long


@dataclass(frozen=True)
class Mount:
    """An icecast mount and the source credentials that stream to it."""

    url: str  # as ffmpeg takes it
    server: str  # host:port
    path: str  # /thoson.mp3
    user: str
    password: str

    @classmethod
    def parse(cls, address: str | None) -> Mount:
        url = (address or "").strip()
        parts = urlsplit(url)
        server = parts.netloc.rpartition("@")[2]
        try:
            has_port = parts.port is not None
        except ValueError:
            has_port = False
        if (
            parts.scheme != "icecast"
            or not parts.hostname
            or not has_port
            or not parts.password
            or parts.path in ("", "/")
        ):
            shown = f"icecast://{server}{parts.path}" if parts.scheme == "icecast" else "it"
            raise DriverError(
                f"the address {shown} is not an icecast mount URL like "
                "icecast://source:PASSWORD@HOST:PORT/MOUNT",
                permanent=True,
            )
        user = unquote(parts.username or "source")
        return cls(url, server, parts.path, user, unquote(parts.password))

    def __str__(self) -> str:
        return f"{self.server}{self.path}"  # never the password

    def redact(self, text: str) -> str:
        """`text` (ffmpeg's words) without the source password."""
        return text.replace(self.url, f"icecast://{self}")

    def _admin(self, command: str, **params: str) -> bytes:
        query = urlencode({"mount": self.path, **params})
        request = Request(f"http://{self.server}/admin/{command}?{query}")
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urlopen(request, timeout=HTTP_TIMEOUT) as response:
            body: bytes = response.read()
            return body

    def stats(self) -> dict[str, str] | None:
        """The server's statistics of this mount, or None while it has no source."""
        try:
            body = self._admin("stats")
        except HTTPError as exc:
            if exc.code == 400:  # "Source does not exist"
                return None
            raise
        for source in ET.fromstring(body).iter("source"):
            if source.get("mount") == self.path:
                # A mount without <charset>UTF-8</charset> keeps "ả" as "&#7843;".
                return {child.tag: html.unescape(child.text or "") for child in source}
        return None

    def set_title(self, title: str) -> None:
        self._admin("metadata", mode="updinfo", song=title, charset="UTF-8")


def encoding(source: Path | Relay) -> list[str]:
    """An MP3 file goes to the stream as it is; anything else is encoded to MP3 (a relay
    like a bulletin: its stream may be AAC, stereo, 44.1 kHz)."""
    if isinstance(source, Relay):
        codec = ["-c:a", "libmp3lame", "-ac", "1", "-ar", str(SAMPLE_RATE), "-b:a", BITRATE]
    elif source.suffix.lower() == ".mp3":
        codec = ["-c:a", "copy"]
    else:
        codec = ["-c:a", "libmp3lame"]
    return ["-map", "0:a:0", *codec, "-id3v2_version", "0", "-write_xing", "0"]


class IcecastOutput:
    """Streams each cue to one mount, with ffmpeg as the source client."""

    def __init__(self, mount: Mount) -> None:
        self.mount = mount

    def play(self, cue: Cue, stop: threading.Event) -> str:
        agent = f"Loa delivery {cue.key}"
        source = Relay(cue) if cue.stream_url else audio_file(cue)
        player = FfmpegPlayer(
            source,
            [*encoding(source), "-content_type", "audio/mpeg", "-user_agent", agent,
             "-f", "mp3", self.mount.url],
        )  # fmt: skip
        seen: dict[str, str] | None = None
        problem = "no answer yet"
        while not player.wait(stop, 1.0 if seen else 0.2):
            try:
                stats = self.mount.stats()
                if stats is None or stats.get("user_agent") != agent:
                    continue
                if seen is None:
                    self.mount.set_title(cue.label or agent)
                seen = stats
            except (OSError, ET.ParseError) as exc:  # the stream goes on; proof may follow
                problem = str(exc)
        try:
            player.finish(stop)
        except OutputError as exc:
            raise OutputError(self.mount.redact(str(exc))) from None
        sent = f"ffmpeg sent {player.written()}"
        if player.relayed:
            sent = f"{player.relayed}; {sent}"
        if seen is None:
            if stop.is_set():
                return f"stopped before icecast listed the source on {self.mount}; {sent}"
            raise OutputError(f"icecast never listed this source on {self.mount} ({problem})")
        return f"{self.proof(seen, agent)}; {sent}"

    def proof(self, stats: dict[str, str], agent: str) -> str:
        facts = [f"icecast listed the source {agent!r} on {self.mount}"]
        facts.append(f"on air from {stats.get('stream_start_iso8601', '?')}")
        if stats.get("title"):
            facts.append(f"title {stats['title']!r}")
        facts.append(f"listener peak {stats.get('listener_peak', '?')}")
        if stats.get("total_bytes_read", "0") not in ("", "0"):
            facts.append(f"{stats['total_bytes_read']} bytes read by the server")
        return ", ".join(facts)


class IcecastDriver(PlayoutDriver):
    kind = "icecast"

    def output(self, address: str | None) -> Output:
        return IcecastOutput(Mount.parse(address))

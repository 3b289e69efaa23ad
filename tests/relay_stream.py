"""The provincial radio for relay tests: a tiny threaded HTTP server on loopback that
streams an MP3 throttled to real time, like a live Icecast/Shoutcast stream.

`GET /live.mp3` streams the tone and ends with it (10 s); `?seconds=S` ends it after S
seconds, `&stall=1` then holds the connection open without a byte more (a radio hung
up the line); `/` is the station's web page; any other path is 404. Each request's
headers and the bytes sent are kept, so a test can compare what a player received with
what the radio sent.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SECONDS = 10.0
BYTES_PER_SECOND = 8000  # 64 kbit/s CBR
TICK = 0.05  # the radio sends every 50 ms


def tone_mp3(path: Path, seconds: float = SECONDS) -> Path:
    """A 64 kbit/s CBR MP3 tone without ID3 or Xing header, as a radio streams it."""
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"sine=f=440:d={seconds}",
         "-ac", "1", "-ar", "22050", "-b:a", "64k", "-id3v2_version", "0", "-write_xing", "0",
         str(path)],
        check=True,
    )  # fmt: skip
    return path


@dataclass
class Listener:
    """One request the radio answered."""

    headers: dict[str, str]
    sent: bytearray = field(default_factory=bytearray)


@dataclass
class Radio:
    port: int
    audio: bytes
    listeners: list[Listener] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/live.mp3"


def _handler(radio: Radio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the body ends when the connection closes

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # http.server's name for GET
            parts = urlsplit(self.path)
            if parts.path == "/":
                page = "<html><body>Đài PT-TH Thanh Hóa</body></html>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(page)
                return
            if parts.path != "/live.mp3":
                self.send_error(404, "no such stream")
                return
            query = parse_qs(parts.query)
            limit = float(query.get("seconds", [SECONDS])[0])
            listener = Listener(dict(self.headers.items()))
            radio.listeners.append(listener)
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            end = min(len(radio.audio), int(limit * BYTES_PER_SECOND))
            begin = time.monotonic()
            while len(listener.sent) < end:
                # Real time: by now, this many seconds of audio are on air.
                due = int((time.monotonic() - begin + TICK) * BYTES_PER_SECOND)
                chunk = radio.audio[len(listener.sent) : min(due, end)]
                try:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                except OSError:  # the listener hung up
                    return
                listener.sent += chunk
                time.sleep(TICK)
            if "stall" in query:
                time.sleep(15)

    return Handler


@contextmanager
def running_radio(tmp_path: Path) -> Iterator[Radio]:
    radio = Radio(0, tone_mp3(tmp_path / "radio.mp3").read_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(radio))
    server.daemon_threads = True
    radio.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, name="radio", daemon=True).start()
    try:
        yield radio
    finally:
        server.shutdown()
        server.server_close()

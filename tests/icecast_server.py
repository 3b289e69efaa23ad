"""A real icecast2 server for tests, on a free loopback port, with a generated config.

Icecast refuses to run as root; as root the config asks it to drop to `nobody` after
binding (`<changeowner>`), with its log directory outside pytest's private tmp tree and
owned by `nobody`. As any other user it simply runs as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port

ICECAST = "/usr/bin/icecast2"
SHARE = Path("/usr/share/icecast2")
SOURCE_PASSWORD = "source-pw"
ADMIN_PASSWORD = "admin-pw"

CONFIG = """<icecast>
  <limits><sources>8</sources><source-timeout>5</source-timeout></limits>
  <authentication>
    <source-password>{source}</source-password>
    <admin-user>admin</admin-user><admin-password>{admin}</admin-password>
  </authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <paths>
    <basedir>{share}</basedir><logdir>{logs}</logdir>
    <webroot>{share}/web</webroot><adminroot>{share}/admin</adminroot>
  </paths>
  <logging>
    <accesslog>access.log</accesslog><errorlog>error.log</errorlog>
    <playlistlog>playlist.log</playlistlog><loglevel>3</loglevel>
  </logging>
  <security><chroot>0</chroot>{changeowner}</security>
</icecast>
"""


@dataclass
class IcecastServer:
    port: int
    logs: Path
    process: subprocess.Popen[bytes]

    def mount_address(self, mount: str, password: str = SOURCE_PASSWORD) -> str:
        """The endpoint address a source uses to stream to `mount`."""
        return f"icecast://source:{password}@127.0.0.1:{self.port}/{mount}"

    def listen_url(self, mount: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mount}"

    def log(self, name: str) -> str:
        """error.log, access.log or playlist.log as the server wrote it."""
        path = self.logs / name
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGKILL: a throwaway server with nothing to save (its logs are on disk), and
        icecast2 takes up to a second and a half to finish after SIGTERM."""
        self.process.kill()
        self.process.wait(timeout=10)


def start_icecast() -> IcecastServer:
    logs = Path(tempfile.mkdtemp(prefix="loa-icecast-"))
    changeowner = ""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(logs, nobody.pw_uid, nobody.pw_gid)
        group = subprocess.run(["id", "-gn", "nobody"], capture_output=True, text=True)
        changeowner = (
            f"<changeowner><user>nobody</user><group>{group.stdout.strip()}</group></changeowner>"
        )
    port = free_port()
    config = logs / "icecast.xml"
    values = {"source": SOURCE_PASSWORD, "admin": ADMIN_PASSWORD, "port": port, "share": SHARE}
    config.write_text(CONFIG.format(**values, logs=logs, changeowner=changeowner))
    process = subprocess.Popen(
        [ICECAST, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"icecast2 exited with {process.returncode}: {err}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/status-json.xsl", timeout=1):
                return IcecastServer(port, logs, process)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("icecast2 did not answer within 10 s")


@contextmanager
def running_icecast() -> Iterator[IcecastServer]:
    """The fixture: a fresh server for the test, stopped and cleaned up after it."""
    server = start_icecast()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.logs, ignore_errors=True)

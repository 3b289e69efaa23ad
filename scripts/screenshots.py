"""Panel screenshots for the README, taken from a demo district of their own.

Starts `loa serve --demo --virtual-speakers` on a free port with a throwaway LOA_DATA,
lets the demo bulletin play on two communes' virtual speakers (Thọ Sơn keeps its
broadcast waiting for the operator), then drives Debian's Chromium with Playwright
(`apt-get install chromium`; no browser download) the way tests/test_browser.py does.

    .venv/bin/python scripts/screenshots.py                 # every shot, into docs/
    .venv/bin/python scripts/screenshots.py -o /tmp/shots panel-today
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from playwright.sync_api import Browser, ViewportSize, sync_playwright

from scheduler.demo import DEMO_USERS

ROOT = Path(__file__).resolve().parent.parent
LOA = str(Path(sys.executable).with_name("loa"))
PASSWORDS = {u.username: u.password for u in DEMO_USERS}
DESKTOP: ViewportSize = {"width": 1280, "height": 757}
PHONE: ViewportSize = {"width": 360, "height": 740}
PLAYED = ["15670", "15673"]  # Xã Thọ Bình, Xã Thọ Tiến: played by their virtual speakers

# name: (user, viewport, path, whole page?). The other docs/panel-*.png show more planned
# and aired data than this fresh demo has; they were taken by hand.
SHOTS: dict[str, tuple[str, ViewportSize, str, bool]] = {
    "panel-today": ("trungtam", DESKTOP, "/", False),
    "panel-operator-phone": ("thoson", PHONE, "/", False),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            sys.exit(f"screenshots: gave up waiting for {what}")
        time.sleep(0.5)


def up(url: str) -> bool:
    try:
        return requests.get(url + "/login", timeout=1).ok
    except requests.ConnectionError:
        return False


def play_demo_bulletin(url: str, env: dict[str, str]) -> None:
    """Schedule the demo bulletin a few seconds ahead on PLAYED and wait until it aired."""
    token = subprocess.run(
        [LOA, "token", "create", "--name", "screenshots", "--role", "centre"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    body = {"bulletin_id": 1, "communes": PLAYED, "at": at.isoformat()}
    api.post(f"{url}/api/v1/broadcasts", json=body, timeout=30).raise_for_status()

    def played() -> bool:
        rows = api.get(f"{url}/api/v1/broadcasts?from={at.date()}", timeout=10).json()
        return sum(r["status"] == "played" for r in rows) >= len(PLAYED)  # type: ignore[no-any-return]

    wait(played, "the demo bulletin to play", 90)


def shoot(browser: Browser, url: str, out: Path, name: str) -> None:
    user, viewport, path, whole = SHOTS[name]
    context = browser.new_context(
        base_url=url, viewport=viewport, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh"
    )
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Tên đăng nhập").fill(user)
    page.get_by_label("Mật khẩu").fill(PASSWORDS[user])
    page.get_by_role("button", name="Đăng nhập").click()
    page.get_by_role("button", name="Đăng xuất").wait_for()
    page.goto(path)
    page.screenshot(path=out / f"{name}.png", full_page=whole)
    context.close()
    print(out / f"{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"which shots (default: all): {', '.join(SHOTS)}")  # fmt: skip
    args = parser.parse_args()
    if unknown := set(args.names) - set(SHOTS):
        parser.error(f"unknown shots: {', '.join(sorted(unknown))}")
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "LOA_DATA": data, "LOA_TTS_ENGINE": "espeak"}
        server = subprocess.Popen(
            [LOA, "serve", "--demo", "--virtual-speakers", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait(lambda: up(url), "loa serve to start", 30)
            play_demo_bulletin(url, env)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
                )
                for name in args.names or SHOTS:
                    shoot(browser, url, args.output, name)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    main()

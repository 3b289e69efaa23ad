"""Screenshot a panel page for the docs: logs in with headless Chromium and saves a PNG.

Needs Debian's chromium and chromium-driver and `pip install selenium` (not a Loa
dependency). Example:
    python scripts/screenshot.py --url http://127.0.0.1:8080 --user trungtam \
        --password loa-trungtam --page / -o docs/panel-today.png
"""

from __future__ import annotations

import argparse

from selenium import webdriver
from selenium.webdriver.common.by import By


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--page", default="/")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--window-size={args.width},{args.height}"):  # fmt: skip
        options.add_argument(flag)
    service = webdriver.ChromeService("/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.get(args.url + "/login")
        driver.find_element(By.NAME, "username").send_keys(args.user)
        driver.find_element(By.NAME, "password").send_keys(args.password)
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        driver.get(args.url + args.page)
        driver.save_screenshot(args.output)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()

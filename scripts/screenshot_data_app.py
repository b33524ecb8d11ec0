"""Take the README's screenshot of examples/data_app.py in headless Chromium.

Usage (from the repository root, in the test venv): ``python scripts/screenshot_data_app.py``
writes ``docs/data_app.png``. It starts the app on a free port in a temporary folder, generates
a table of 50,000 rows, waits for the chart, saves the window and prints the sizes the
page shows (the README quotes them).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from dash.testing.browser import Browser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ui_support import SECRET, clean_env, free_port, server_process  # noqa: E402

TIMEOUT = 30


def main(out: Path = ROOT / "docs" / "data_app.png") -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(HOST="127.0.0.1", PORT=str(port), DASH_DATABASE_SECRET=SECRET)
    with (
        tempfile.TemporaryDirectory() as workdir,
        server_process([str(ROOT / "examples" / "data_app.py")], Path(workdir), env, url),
        Browser(browser="chrome", headless=True, options=None, download_path=workdir) as chrome,
    ):
        chrome.driver.set_window_size(1000, 960)
        chrome.server_url = url
        chrome.wait_for_contains_text("#status", "No data yet", timeout=TIMEOUT)
        field = chrome.find_element("#row-count")
        field.clear()
        field.send_keys("50000")
        chrome.find_element("#generate").click()
        chrome.wait_for_contains_text("#sizes", "Rows: 50000.", timeout=TIMEOUT)
        chrome.wait_for_element("#chart .bars", timeout=TIMEOUT)
        subprocess.run(["sleep", "1"], check=True)  # let the chart's transition finish
        chrome.driver.save_screenshot(str(out))
        sizes = chrome.find_element("#sizes").text.replace("\n", " ")
    print(f"wrote {out.relative_to(ROOT)}; the page shows: {sizes}")


if __name__ == "__main__":
    main()

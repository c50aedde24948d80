"""Headless Chromium through Selenium and Debian's chromium-driver, offline: a page's checks and its screenshot.

Selenium is pointed at /usr/bin/chromedriver explicitly, so Selenium Manager never looks for a driver online.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def available() -> str | None:
    """Why the browser check cannot run here, or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e .[test])"
    for path, package in ((CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")):
        if not Path(path).exists():
            return f"{path} is missing (Debian: apt-get install {package})"
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@contextmanager
def serve(root: Path):
    """Serve `root` on 127.0.0.1 (a free port); yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium(width: int = 1400, height: int = 900):
    """A headless Chromium whose viewport (not window) is width x height; its console log is kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        # the window includes no chrome in headless mode, but set the viewport exactly through CDP
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        yield driver
    finally:
        driver.quit()


PAGE_CHECK = """
const done = arguments[arguments.length - 1];
(async () => {
  const images = [...document.images].map(img => ({src: img.getAttribute('src'),
                                                     ok: img.complete && img.naturalWidth > 0}));
  const links = [];
  for (const a of document.querySelectorAll('a[href]')) {
    const href = a.getAttribute('href');
    if (href.startsWith('#')) {
      links.push({href, ok: document.getElementById(decodeURIComponent(href.slice(1))) !== null});
    } else {
      const response = await fetch(a.href, {method: 'GET'});
      links.push({href, ok: response.ok, status: response.status});
    }
  }
  const claims = [...document.querySelectorAll('details.claim')].map(d => {
    const summary = d.querySelector('summary').getBoundingClientRect();
    const svg = d.querySelector('svg.forest');
    const box = svg ? svg.getBoundingClientRect() : null;
    return {id: d.id.replace(/^claim-/, ''), verdict: d.querySelector('.chip') ?
              d.querySelector('.chip').textContent.trim() : null,
            chipVisible: !!d.querySelector('.chip') && d.querySelector('.chip').getBoundingClientRect().width > 0,
            top: summary.top, bottom: summary.bottom, open: d.open,
            svg: box ? {width: box.width, height: box.height, marks: svg.querySelectorAll('.est, .none').length,
                        rows: Number(svg.dataset.rows)} : null};
  });
  const head = document.querySelector('.board-head'), counts = document.getElementById('counts');
  const words = document.body.innerText.split(/\\s+/).filter(Boolean).length;
  return {images, links, claims, title: document.title, words,
          header: head && counts ? {top: Math.min(head.getBoundingClientRect().top, counts.getBoundingClientRect().top),
                                    bottom: head.getBoundingClientRect().bottom} : null,
          viewport: {width: window.innerWidth, height: window.innerHeight}};
})().then(done, e => done({error: String(e)}));
"""


def check_page(driver, url: str, screenshot: Path | None = None) -> dict:
    """Open `url`, run the page checks above (links fetched, images decoded, claims measured), keep a screenshot."""
    driver.set_script_timeout(60)
    driver.get(url)
    found = driver.execute_async_script(PAGE_CHECK)
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
    found["console"] = [entry for entry in driver.get_log("browser") if entry.get("level") in ("SEVERE", "ERROR")]
    return found

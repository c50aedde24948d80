"""Browser check: a tiny report from constructed results, served on 127.0.0.1 and opened in headless Chromium.

Every image must load, every link resolve (same-page anchors to an element, files with HTTP 200), and nothing may
error in the console or the network log. A screenshot is saved (to $HEAVYTAIL_SCREENSHOT_DIR when set).
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from cdp import Browser
from report_fixtures import TINY_DATA, make_results

from heavytail.report import aggregate, render

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

PAGE_CHECK = """(async () => {
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
  return {images, links, title: document.title, verdictRows: document.querySelectorAll('tr[id^=claim-]').length};
})()"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def served_report(tmp_path, monkeypatch):
    artifacts = make_results(tmp_path)
    monkeypatch.chdir(tmp_path)
    cfg = {"scale": "tiny", "data": TINY_DATA, "artifacts": artifacts}
    aggregate.main(["--config", json.dumps(cfg), "--out", "results/tiny/tables"])
    report_dir = tmp_path / "reports" / "tiny"
    judged = render.render(cfg, report_dir / "index.html")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(report_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html", judged
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_report_opens_cleanly_in_headless_chromium(served_report, tmp_path):
    url, judged = served_report
    browser = Browser(CHROMIUM, tmp_path / "chromium-profile")
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(f"{domain}.enable")
        browser.call("Page.navigate", url=url)
        browser.wait_for("Page.loadEventFired")
        found = browser.evaluate(PAGE_CHECK)
        shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
        browser.call("Runtime.evaluate", expression="0")  # drain events that arrived meanwhile
    finally:
        browser.close()
    shot_dir = Path(os.environ.get("HEAVYTAIL_SCREENSHOT_DIR", tmp_path))
    shot_dir.mkdir(parents=True, exist_ok=True)
    (shot_dir / "report_tiny.png").write_bytes(shot)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000

    assert found["title"] == "heavytail report (tiny scale)"
    assert found["verdictRows"] == len(judged)
    assert found["images"], "the constructed report has a figure"
    assert all(img["ok"] for img in found["images"]), found["images"]
    broken = [link for link in found["links"] if not link["ok"]]
    assert not broken, broken
    assert any(not link["href"].startswith("#") for link in found["links"])  # the figure's SVG link was fetched

    errors = []
    for event in browser.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(params["exceptionDetails"].get("text"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(params.get("args"))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            errors.append(params["entry"].get("text"))
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            errors.append(f"{params['response']['status']} {params['response']['url']}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            errors.append(params.get("errorText"))
    assert not errors, errors

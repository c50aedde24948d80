"""Browser check: the report of constructed results, served on 127.0.0.1 and opened in headless Chromium (Selenium
with Debian's chromium-driver, offline) at 1400 x 900.

The first screen shows the scoreboard's header and at least 8 claims; every claim of paper.yaml has a verdict and
a drawn forest plot; every image loads and every link resolves (anchors to an element, files with HTTP 200);
nothing errors in the console; the page shows at most 2,500 words before a <details> is opened. The screenshot is
kept: $HEAVYTAIL_SCREENSHOT_DIR/report_tiny.png when set, else in the test's tmp dir (the path is printed).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser import available, check_page, chromium, serve
from report_fixtures import build_report

from heavytail.report import scales, verdicts
from heavytail.report.outcomes import VERDICTS

WIDTH, HEIGHT = 1400, 900
MISSING = available()


@pytest.fixture
def site(tmp_path, monkeypatch):
    """reports/tiny/index.html and reports/index.html over results/ and logs/, as a checkout holds them."""
    monkeypatch.chdir(tmp_path)
    build_report(tmp_path)
    scales.render_scales([Path("reports/tiny/verdicts.json")], Path("reports/index.html"))
    return tmp_path


def assert_clean(found: dict) -> None:
    assert all(img["ok"] for img in found["images"]), [i for i in found["images"] if not i["ok"]]
    broken = [link for link in found["links"] if not link["ok"]]
    assert not broken, broken
    assert not found["console"], found["console"]


@pytest.mark.slow
@pytest.mark.skipif(MISSING is not None, reason=str(MISSING))
def test_report_first_screen_and_every_claim_in_headless_chromium(site, tmp_path):
    shot = Path(os.environ.get("HEAVYTAIL_SCREENSHOT_DIR", tmp_path)) / "report_tiny.png"
    with serve(site) as base, chromium(WIDTH, HEIGHT) as driver:
        found = check_page(driver, f"{base}/reports/tiny/index.html", shot)
        driver.find_element("css selector", "details.claim summary").click()  # evidence opens in one click
        opened = driver.execute_script("const d = document.querySelector('details.claim');"
                                       "return [d.open, d.querySelector('.evidence').getBoundingClientRect().height]")
        page = check_page(driver, f"{base}/reports/index.html")
    print(f"screenshot of the tiny report at {WIDTH}x{HEIGHT}: {shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert found["viewport"] == {"width": WIDTH, "height": HEIGHT}

    assert found["title"] == "heavytail report (tiny scale)"
    assert found["images"] and any(not link["href"].startswith("#") for link in found["links"])
    assert any(link["href"].endswith(".log") for link in found["links"])  # evidence links the jobs' logs
    assert_clean(found)

    claims = {c["id"]: c for c in found["claims"]}
    assert set(claims) == {c["id"] for c in verdicts.load_paper()["claims"]}
    for claim in claims.values():
        assert claim["verdict"] in VERDICTS and claim["chipVisible"] and not claim["open"], claim
        svg = claim["svg"]
        assert svg and svg["width"] > 100 and svg["height"] > 10 and svg["marks"] >= max(svg["rows"], 1), claim
    # the first screen: the count line, the scoreboard's header and at least 8 claims, without scrolling
    assert 0 <= found["header"]["top"] and found["header"]["bottom"] <= HEIGHT
    first = sorted(found["claims"], key=lambda c: c["top"])[:8]
    assert all(c["bottom"] <= HEIGHT for c in first), [(c["id"], c["bottom"]) for c in first]
    assert found["words"] <= 2500
    assert opened[0] and opened[1] > 50

    assert_clean(page)
    assert page["title"] == "heavytail: every scale side by side"

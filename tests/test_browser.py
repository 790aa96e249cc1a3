"""Every committed report page rendered in a real browser (headless Debian chromium): no missing
image, no broken link, no console error, nothing wider than 1,400 px.

Each page loads in a 1400x900 frame of a small wrapper page whose script reports what the
browser saw (page width, images decoded, links); chromium prints the wrapper's DOM after the
page has loaded. CI installs chromium and sets ARCHLAB_REQUIRE_BROWSER=1 so this never skips.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from archlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
MAX_WIDTH = 1400
SCREEN_HEIGHT = 900  # the frame's height: what a reader sees before scrolling
PAGES = sorted([REPORTS / "index.html", *REPORTS.glob("*/report.html")])
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-file-access-from-files",
    "--enable-logging=stderr",
    "--virtual-time-budget=10000",
    "--window-size=1500,1000",
]
WRAPPER = """<!DOCTYPE html><html><body>
<iframe id="f" src="{src}" style="width:1400px;height:900px;border:0"></iframe>
<pre id="out">not loaded</pre>
<script>
document.getElementById('f').addEventListener('load', () => {{
  const d = document.getElementById('f').contentDocument;
  const box = e => e ? [e.getBoundingClientRect().top, e.getBoundingClientRect().bottom] : null;
  const imgs = [...d.images];
  document.getElementById('out').textContent = JSON.stringify({{
    width: d.documentElement.scrollWidth,
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    links: [...d.links].map(a => a.getAttribute('href')),
    // where the answer sits: [top, bottom] of the first table and of the forest plot, in px
    // from the top of the frame (null: none on the page)
    table: box(d.querySelector('table')),
    forest: box(imgs.find(i => (i.alt || '').startsWith('claims: differences'))),
  }});
}});
</script></body></html>
"""


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe:
        return exe
    if os.environ.get("ARCHLAB_REQUIRE_BROWSER") == "1":
        pytest.fail("chromium is required here: apt-get install chromium")
    pytest.skip("chromium not installed (apt-get install chromium)")


def render(page: Path, tmp: Path) -> tuple[dict, str]:
    """What the browser saw of ``page`` (width, images, links) and its stderr log."""
    wrapper = tmp / "wrap.html"
    wrapper.write_text(WRAPPER.format(src=page.as_uri()))
    cmd = [_chromium(), *FLAGS, f"--user-data-dir={tmp / 'profile'}", "--dump-dom"]
    out = subprocess.run(
        [*cmd, wrapper.as_uri()], capture_output=True, text=True, timeout=120, check=False
    )
    found = re.search(r'<pre id="out">(.*?)</pre>', out.stdout, re.S)
    assert found, f"{page}: the browser printed no DOM (rc {out.returncode}): {out.stderr[-500:]}"
    text = found.group(1).replace("&quot;", '"').replace("&amp;", "&")
    assert text != "not loaded", f"{page}: the page did not load"
    return json.loads(text), out.stderr


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPORTS)))
def test_report_page_renders_cleanly(page: Path, tmp_path: Path) -> None:
    seen, log = render(page, tmp_path)
    assert seen["width"] <= MAX_WIDTH, f"{page} is {seen['width']} px wide"
    assert not seen["broken"], f"{page}: images that did not load: {seen['broken']}"
    console = [line for line in log.splitlines() if ":CONSOLE(" in line]
    assert not console, f"{page}: console messages: {console}"
    for href in seen["links"]:
        if re.match(r"^(https?:|mailto:|#)", href or ""):
            continue
        assert (page.parent / href).exists(), f"{page}: broken link {href}"


def test_the_check_sees_a_broken_image_and_a_wide_page(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        '<html><body><div style="width:2000px">wide</div>'
        '<img src="missing.png" alt="gone"><a href="nowhere.html">x</a></body></html>'
    )
    seen, _ = render(page, tmp_path)
    assert seen["width"] > MAX_WIDTH
    assert seen["broken"] == ["gone"]
    assert seen["links"] == ["nowhere.html"] and not (tmp_path / "nowhere.html").exists()


def test_factorization_answer_is_on_the_first_screen(tmp_path: Path) -> None:
    """The verdict table and the whole forest plot under it fit the first 1400x900 screen.

    The page is rendered afresh from the committed journal, so the check is on today's code
    rather than on the last committed render.
    """
    journal = ROOT / "results" / "factorization" / "journal.log"
    args = ["study", "report", "factorization", "--storage", str(journal)]
    args += ["--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports")]
    assert main(args) == 0
    seen, _ = render(tmp_path / "reports" / "factorization" / "report.html", tmp_path)
    assert seen["table"] and seen["forest"], seen
    (table_top, table_bottom), (forest_top, forest_bottom) = seen["table"], seen["forest"]
    assert 0 <= table_top < table_bottom <= forest_top, seen  # the answer table, then its plot
    assert forest_bottom <= SCREEN_HEIGHT, seen  # the plot's bottom edge too, not just its top

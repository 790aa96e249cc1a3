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

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
MAX_WIDTH = 1400
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
  const imgs = [...d.images];
  document.getElementById('out').textContent = JSON.stringify({{
    width: d.documentElement.scrollWidth,
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    links: [...d.links].map(a => a.getAttribute('href')),
    // where the answer sits: the first table and the forest plot, from the top of the frame
    table_top: d.querySelector('table') ? d.querySelector('table').getBoundingClientRect().top : -1,
    forest_top: imgs.filter(i => (i.alt || '').startsWith('claims: differences'))
      .map(i => i.getBoundingClientRect().top),
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
    """The verdict table and the forest plot start inside the first 1400x900 screen."""
    seen, _ = render(REPORTS / "factorization" / "report.html", tmp_path)
    assert 0 <= seen["table_top"] < 900, seen
    assert seen["forest_top"] and 0 <= seen["forest_top"][0] < 900, seen

"""The built book as a reader meets it: every page of _toc.yml opened in headless Chromium at 1280 px.

Fails on a missing image or broken internal link, any request the server answers 404, an error or traceback in an
output, a table or figure wider than the content column (folded cells opened), a figure shown at less than 80 % of the width it was drawn at, TeX left unrendered, a path of
the machine that built the book, and a console error. Saves a screenshot of every page under _build/screenshots/.
"""
from __future__ import annotations

import http.server
import re
import shutil
import threading
import urllib.parse

import pytest

from weightsharing import cli, paths

ROOT = paths.repo_root()
PAGES = ["intro"] + cli.toc_notebooks(ROOT) + ["references"]
WIDTH = 1280
INSTALL = "install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; make test does it)"
# Console messages a correct page may still log; every one is named here, nothing else is tolerated.
HARMLESS = (
    "favicon.ico",  # the book has no favicon; the browser asks for one anyway
    "'THEBE_JS_URL' has already been declared",  # jupyter-book 1.0.4 loads sphinx-thebe's config script twice; the
                                                 # launch buttons it serves are off in _config.yml
    "Got invalid theme mode",  # pydata-sphinx-theme on a first visit with no stored light/dark choice: picks auto
)
MACHINE_PATH = re.compile(r"(?<![\w.])(/root/|/home/|/work/|/tmp/|/Users/|[A-Z]:\\\\)")
RAW_TEX = re.compile(r"\\(frac|mathbb|mathcal|mathbf|theta|epsilon|langle|rangle|begin\{|sum_|tanh)|\$\$")

MEASURE = """
const article = document.querySelector('article.bd-article') || document.querySelector('main');
const column = article.clientWidth;
const out = {column: column, wide: [], shrunk: [], broken_images: [], errors: [], links: []};
for (const el of article.querySelectorAll('table, img, svg.figure, .cell_output pre')) {
  const w = el.getBoundingClientRect().width;
  const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' ' + (el.alt || el.textContent || '').slice(0, 60).trim();
  if (w > column + 1 || el.scrollWidth > el.clientWidth + 1 && el.tagName !== 'IMG') out.wide.push([name, Math.round(w), column]);
}
for (const img of document.images) {
  if (!img.complete || img.naturalWidth === 0) { out.broken_images.push(img.getAttribute('src')); continue; }
  if (img.closest('.cell_output') && img.clientWidth < 0.8 * img.naturalWidth)
    out.shrunk.push([img.getAttribute('src').slice(-40), img.clientWidth, img.naturalWidth]);
}
for (const el of article.querySelectorAll('.output.traceback, .output.error, .output.stderr'))
  out.errors.push(el.textContent.slice(0, 120));
if (article.innerText.includes('Traceback (most recent call last)')) out.errors.push('a traceback in the text');
for (const a of document.querySelectorAll('a[href]')) {
  const u = new URL(a.getAttribute('href'), document.baseURI);
  if (u.origin === location.origin) out.links.push(u.pathname);
}
out.text = article.innerText;
out.height = document.documentElement.scrollHeight;
return out;
"""


def _chromium():
    chrome, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chrome and driver):
        pytest.fail(f"no {'chromium' if not chrome else 'chromedriver'} on PATH: {INSTALL}", pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: run `make install` (pyproject.toml pins it)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--window-size={WIDTH},1000", "--hide-scrollbars"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture(scope="module")
def site(built_book):
    html = built_book.parent
    missing = []  # every request the server answered 404, whatever asked for it (page, script, lazy image)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(html), **kwargs)

        def log_message(self, fmt, *args):
            if len(args) > 1 and str(args[1]) == "404":
                missing.append(str(args[0]).split()[1])

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = _chromium()
    yield f"http://127.0.0.1:{server.server_port}", browser, html, missing
    browser.quit()
    server.shutdown()


def _page(name: str) -> str:
    return f"book/{name}.html"


@pytest.mark.slow
@pytest.mark.parametrize("name", PAGES)
def test_page_reads_well_in_a_browser(site, name):
    base, browser, html, missing = site
    browser.set_window_size(WIDTH, 1000)
    missing.clear()
    browser.get(f"{base}/{_page(name)}")
    browser.execute_async_script(  # wait until MathJax has typeset the page (if the page loads it)
        "const done = arguments[0]; const m = window.MathJax;"
        "if (m && m.startup && m.startup.promise) m.startup.promise.then(() => done(true)); else done(false);")
    # every folded cell opened and the page scrolled through: a table a reader unfolds, and a resource loaded only
    # when scrolled to, are measured like the rest
    browser.execute_script("window.folded = [...document.querySelectorAll('details:not([open])')];"
                           "window.folded.forEach(d => d.open = true);")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    for y in range(0, height, 900):
        browser.execute_script(f"window.scrollTo(0, {y})")
    browser.execute_script("window.scrollTo(0, 0)")
    found = browser.execute_script(MEASURE)
    problems = []
    problems += [f"missing image {src}" for src in found["broken_images"]]
    problems += [f"wider than the {col} px column: {what} ({w} px)" for what, w, col in found["wide"]]
    problems += [f"figure shown at {shown} of its {drawn} px" for _, shown, drawn in found["shrunk"]]
    problems += [f"error output: {text}" for text in found["errors"]]
    problems += [f"requested a missing resource: {path}" for path in missing if not path.endswith("favicon.ico")]
    for path in sorted(set(found["links"])):
        target = html / urllib.parse.unquote(path).lstrip("/")
        if not (target.is_file() or (target / "index.html").is_file()):
            problems.append(f"broken link {path}")
    if RAW_TEX.search(found["text"]):
        problems.append(f"unrendered TeX near {RAW_TEX.search(found['text']).group(0)!r}")
    if MACHINE_PATH.search(found["text"]):
        m = MACHINE_PATH.search(found["text"])
        problems.append(f"a machine path in the text: {found['text'][max(0, m.start() - 30):m.end() + 30]!r}")
    for entry in browser.get_log("browser"):
        if entry["level"] == "SEVERE" and not any(h in entry["message"] for h in HARMLESS):
            problems.append(f"console error: {entry['message'][:160]}")
    browser.execute_script("window.folded.forEach(d => d.open = false);")  # the screenshot shows the page as served
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(WIDTH, min(found["height"], 12_000))
    browser.save_screenshot(str(shots / f"{name}.png"))
    assert not problems, f"{_page(name)} at {WIDTH} px:\n  " + "\n  ".join(problems)


def test_missing_browser_is_one_line_naming_what_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium chromium-driver"):
        _chromium()

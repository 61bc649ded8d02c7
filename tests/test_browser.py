"""Both editions of the built book, read in a real browser (headless Chromium, no network).

Every page is served from 127.0.0.1 and any request to another host is blocked and counted
as a failure, so maths, icons and the kernel-free sliders must work offline. On every
chapter page: no JavaScript error in the console and no uncaught exception; every maths
element rendered by MathJax and no raw ``\\(`` left in the text; theorem and exercise boxes;
the time estimate near the top; a Colab button opening an ``.ipynb``; solutions collapsed
until clicked (public edition) or absent (student edition); moving the kernel-free slider
changes the figure; figures stay light (readable) in dark mode. A full-page screenshot of
every page is saved to ``<build>/browser-screenshots/``.

Needs Debian's ``chromium`` (``make test`` installs it; ``MINI_ADV_CHROMIUM`` overrides the
path) and the ``playwright`` package of ``requirements.txt``, which drives that browser:
Playwright's own browser download is never used. ``MINI_ADV_BUILD=<a _build folder>`` runs
the tests on a prebuilt site (``html/`` and ``student/html/``) instead of building it.
"""

import functools
import http.server
import io
import os
import pathlib
import re
import shutil
import threading

import pytest
import yaml

pytestmark = pytest.mark.browser

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
PAGES = [TOC["root"]] + [c["file"] for part in TOC["parts"] for c in part["chapters"]]
CHAPTERS = [p for p in PAGES if (ROOT / f"{p}.ipynb").exists()]
# The closing chapter (book/regimes) gathers the others' results: a table and one figure, no
# theorem box and no slider of its own.
CLOSING = [p for p in CHAPTERS if not pathlib.Path(p).name.startswith("ch")]
INSTRUCTOR_PAGES = [c["file"] for part in TOC["parts"] if part.get("caption") == "For instructors"
                    for c in part["chapters"]]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
THEOREM_KINDS = ("theorem", "lemma", "proposition", "definition", "algorithm")
SCREENSHOT_MAX_HEIGHT = 30_000  # pixels: whole chapters; the long API page is cut


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def servers(public_site, student_site):
    """Each edition served over HTTP on 127.0.0.1, as a static host would."""
    urls, running = {}, []
    for edition, site in (("public", public_site), ("student", student_site)):
        handler = functools.partial(_Quiet, directory=str(site.html))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        running.append(server)
        urls[edition] = f"http://127.0.0.1:{server.server_address[1]}"
    yield urls
    for server in running:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("MINI_ADV_CHROMIUM") or shutil.which("chromium")
    if not exe:
        pytest.fail("Debian's chromium is not installed (`make test` installs it: apt-get install chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Reader:
    """One page in a fresh browser context, with what went wrong while it loaded."""

    def __init__(self, browser, url, *, dark=False):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900},
                                           color_scheme="dark" if dark else "light")
        host = re.match(r"https?://[^/]+", url)[0]
        self.errors, self.external = [], []

        def route(r):
            if r.request.url.startswith(host):
                r.continue_()
            else:
                self.external.append(r.request.url)
                r.abort()

        self.context.route("**/*", route)
        self.context.set_default_timeout(60_000)  # a busy 2-core CI machine
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.goto(url, wait_until="load")
        if self.page.locator("script[src*='mathjax']").count():  # pages with maths load it
            self.page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
            self.page.evaluate("() => MathJax.startup.promise.then(() => true)")

    def close(self):
        self.context.close()


def _check_offline_and_error_free(reader):
    assert not reader.external, f"requests outside the site (blocked): {reader.external}"
    assert not reader.errors, f"JavaScript errors: {reader.errors}"


def _check_maths(page):
    n_math = page.locator("span.math, div.math").count()
    unrendered = page.locator("span.math:not(:has(mjx-container)), div.math:not(:has(mjx-container))")
    assert unrendered.count() == 0, f"{unrendered.count()} of {n_math} maths elements not rendered"
    assert page.locator("mjx-merror, [data-mjx-error]").count() == 0, "MathJax reports a TeX error"
    text = page.inner_text("body")
    for raw in ("\\(", "\\)", "\\[", "\\begin{"):
        assert raw not in text, f"raw TeX {raw!r} in the text: ...{text[text.find(raw) - 60:text.find(raw) + 60]}..."
    return n_math


def _check_chapter(page, chapter, edition):
    assert _check_maths(page) > 10, "a chapter without maths?"
    if chapter in CLOSING:
        assert page.locator("article table").count() >= 1, "the closing chapter without its table"
    else:
        kinds = page.eval_on_selector_all("div.proof.admonition", "els => els.map(e => e.className)")
        assert any(k in c.split() for c in kinds for k in THEOREM_KINDS), f"no theorem box: {kinds}"
    exercises = page.locator("div.exercise.admonition")
    assert exercises.count() >= 3, "fewer than three exercise boxes"
    for title in exercises.locator(".admonition-title").all_inner_texts():
        assert re.search(r", \d+ min\)\)?\s*$", title), f"exercise without a time estimate: {title!r}"

    assert not re.search(r"\d+(\.\d+)?it/s|s/it\]", page.inner_text("body")), "a progress bar in the static book"

    estimate = page.get_by_text(re.compile(r"Time: about \d+ minutes of reading, \d+ minutes of exercises"))
    assert estimate.count() == 1 and estimate.is_visible(), "no time estimate"
    first_section = page.locator("article section section h2").first
    assert estimate.bounding_box()["y"] < first_section.bounding_box()["y"], "the time estimate is not near the top"

    colab = page.locator('a[href^="https://colab.research.google.com/"]')
    assert colab.count() == 1, "no Colab button"
    href = colab.get_attribute("href")
    assert href.endswith(".ipynb"), href
    page.locator(".dropdown-launch-buttons button").click()
    assert colab.is_visible(), "the launch menu does not show the Colab button"
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    if edition == "public":
        assert href == (f"https://colab.research.google.com/github/{repo}/blob/"
                        f"{CONFIG['repository']['branch']}/{chapter}.ipynb"), href
    else:
        assert re.fullmatch(rf"https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/_sources/"
                            rf"{re.escape(chapter)}\.ipynb", href), href
    page.keyboard.press("Escape")


def _check_solutions_collapsed_until_clicked(page):
    solutions = page.locator("div.solution")
    n_ex = page.locator("div.exercise.admonition").count()
    assert solutions.count() == n_ex, f"{solutions.count()} solutions for {n_ex} exercises"
    for i in range(solutions.count()):
        sol = solutions.nth(i)
        body = sol.locator("section").first
        button = sol.locator("button.toggle-button")
        assert body.is_hidden(), f"solution {i + 1} is open before any click"
        assert button.get_attribute("aria-expanded") == "false"
        button.click()
        body.wait_for(state="visible", timeout=5000)
        assert button.get_attribute("aria-expanded") == "true"
        assert body.locator("mjx-container, pre").count() + len(body.inner_text()) > 0


def _check_slider_changes_the_frame(page):
    players = page.locator("div.animation")
    assert players.count() >= 1, "no kernel-free slider"
    for i in range(players.count()):
        player = players.nth(i)
        slider, img = player.locator("input[type=range]"), player.locator("img").first
        player.scroll_into_view_if_needed()
        src0, shot0 = img.get_attribute("src"), img.screenshot()
        page.wait_for_timeout(1500)  # longer than a frame: the player must not move by itself
        assert img.get_attribute("src") == src0, "the player changes frame without being touched"
        box = slider.bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + 4, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] - 2, y, steps=8)
        page.mouse.up()
        assert slider.input_value() == slider.get_attribute("max"), "the slider did not move"
        changed = img.get_attribute("src") != src0
        assert changed, "moving the slider does not change the frame"
        assert img.screenshot() != shot0, "moving the slider does not change the picture"


@pytest.mark.parametrize("page_name", PAGES)
@pytest.mark.parametrize("edition", ["public", "student"])
def test_page_in_a_browser(browser, servers, screenshots, student_site, edition, page_name):
    if edition == "student" and page_name in INSTRUCTOR_PAGES:
        assert not (student_site.html / f"{page_name}.html").exists(), "instructor page in the student edition"
        return
    reader = Reader(browser, f"{servers[edition]}/{page_name}.html")
    page = reader.page
    try:
        height = min(page.evaluate("document.documentElement.scrollHeight"), SCREENSHOT_MAX_HEIGHT)
        page.screenshot(path=screenshots / f"{edition}-{pathlib.Path(page_name).name}.png", full_page=True,
                        clip={"x": 0, "y": 0, "width": 1280, "height": height})
        _check_offline_and_error_free(reader)
        _check_maths(page)
        if page_name in CHAPTERS:
            _check_chapter(page, page_name, edition)
            if edition == "public":
                _check_solutions_collapsed_until_clicked(page)
            else:
                assert page.locator("div.solution").count() == 0, "a solution in the student edition"
                assert "Solution to" not in page.inner_text("body")
            if page_name not in CLOSING:
                _check_slider_changes_the_frame(page)
        _check_offline_and_error_free(reader)  # clicks and slider moves did not break anything
    finally:
        reader.close()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_figures_stay_light_in_dark_mode(browser, servers, screenshots, chapter):
    """The theme's dark mode must not put the figures' dark text on a dark background."""
    from PIL import Image

    reader = Reader(browser, f"{servers['public']}/{chapter}.html", dark=True)
    page = reader.page
    try:
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        figures = page.locator("div.cell_output img")
        assert figures.count() >= (1 if chapter in CLOSING else 2)
        first = figures.first
        first.scroll_into_view_if_needed()
        page.screenshot(path=screenshots / f"dark-{pathlib.Path(chapter).name}.png")
        for i in range(figures.count()):
            fig = figures.nth(i)
            fig.scroll_into_view_if_needed()
            grey = Image.open(io.BytesIO(fig.screenshot())).convert("L")
            w, h = grey.size
            # the figure's own corners, inside the frame (padding) the theme draws around images
            k = 4 + round(fig.evaluate("e => parseFloat(getComputedStyle(e).paddingLeft)"
                                       " + parseFloat(getComputedStyle(e).borderLeftWidth)"))
            corners = [grey.getpixel((x, y)) for x in (k, w - 1 - k) for y in (k, h - 1 - k)]
            # Measured: 219, the figures' opaque white dimmed by the theme. A transparent figure
            # shows the theme's frame colour there instead (178 in dark mode).
            assert min(corners) > 200, f"figure {i + 1}: no opaque white background in dark mode: {corners}"
        _check_offline_and_error_free(reader)
    finally:
        reader.close()

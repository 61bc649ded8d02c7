import dataclasses
import os
import pathlib
import subprocess
import sys
import time

import jax
import pytest

os.environ.setdefault("MINI_ADV_STATIC", "1")  # no progress bars in test logs


def pytest_generate_tests(metafunc):
    """MINI_ADV_REPEAT=N runs every fresh-key test N times (N fresh seeds), to measure flakiness."""
    n = int(os.environ.get("MINI_ADV_REPEAT", "1"))
    if n > 1 and "fresh_key" in metafunc.fixturenames:
        metafunc.parametrize("fresh_key", range(n), indirect=True)


@pytest.fixture
def fresh_key(request):
    """A key that differs between test runs (fresh random draws), printed on failure.

    MINI_ADV_SEED=<seed> replays the draws of a failed run.
    """
    seed = int(os.environ.get("MINI_ADV_SEED") or int.from_bytes(os.urandom(4), "little"))
    request.node.user_properties.append(("seed", seed))
    print(f"fresh seed: {seed}")
    return jax.random.key(seed)


# ---- the built site, shared by tests/test_book.py and tests/test_browser.py -------------

ROOT = pathlib.Path(__file__).resolve().parent.parent
_SCREENSHOT_DIRS: list[pathlib.Path] = []  # printed at the end of the run


@dataclasses.dataclass
class Site:
    """A built edition: ``build`` is the ``_build`` folder (public) or ``_build/student``."""

    build: pathlib.Path
    log: str = ""
    seconds: float | None = None  # build time; None when MINI_ADV_BUILD gave a prebuilt site

    @property
    def html(self) -> pathlib.Path:
        return self.build / "html"


def _run(cmd: list[str]) -> tuple[int, str, float]:
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "MINI_ADV_STATIC": "1"})
    return proc.returncode, proc.stdout + proc.stderr, time.time() - t0


@pytest.fixture(scope="session")
def public_site() -> Site:
    """The public edition, built once per session from a clean cache with warnings as errors.

    ``MINI_ADV_BUILD=<a _build folder>`` uses that prebuilt site instead (to iterate on the
    tests): its ``html/`` is the public edition.
    """
    prebuilt = os.environ.get("MINI_ADV_BUILD")
    if prebuilt:
        site = Site(pathlib.Path(prebuilt).resolve())
        if not (site.html / "index.html").exists():
            pytest.fail(f"MINI_ADV_BUILD={prebuilt} has no html/index.html")
        return site
    jb = str(pathlib.Path(sys.executable).with_name("jupyter-book"))
    subprocess.run([jb, "clean", "--all", str(ROOT)], check=True, capture_output=True)
    rc, log, seconds = _run([jb, "build", str(ROOT), "-W", "--keep-going"])
    if rc != 0:
        pytest.fail(f"the book build failed (exit {rc}):\n{log[-6000:]}", pytrace=False)
    return Site(ROOT / "_build", log, seconds)


@pytest.fixture(scope="session")
def student_site(public_site: Site) -> Site:
    """The student edition (``make student``), built after the public one to reuse its cache.

    With ``MINI_ADV_BUILD``, a prebuilt ``student/html`` there is used, or built if missing.
    """
    site = Site(public_site.build / "student")
    if public_site.seconds is None and (site.html / "index.html").exists():
        return site
    rc, log, seconds = _run([sys.executable, str(ROOT / "tools" / "student_edition.py"),
                             "--public-build", str(public_site.build), "--output", str(site.build)])
    if rc != 0:
        pytest.fail(f"the student edition's build failed (exit {rc}):\n{log[-6000:]}", pytrace=False)
    return Site(site.build, log, seconds)


@pytest.fixture(scope="session")
def screenshots(public_site: Site) -> pathlib.Path:
    """Where tests/test_browser.py saves its screenshots: ``<build>/browser-screenshots``."""
    folder = public_site.build / "browser-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    _SCREENSHOT_DIRS.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print each chapter's execution time after a run that built the book (tests/test_book.py),
    and where the browser test saved its screenshots."""
    lines = getattr(config, "_mini_adv_chapter_times", None)
    if lines:
        terminalreporter.section("chapter execution times (clean build)")
        for line in lines:
            terminalreporter.write_line(line)
    for folder in _SCREENSHOT_DIRS:
        terminalreporter.write_line(f"browser screenshots (one per page and edition): {folder}")

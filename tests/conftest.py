"""Shared fixtures of the test suite.

Seeds (``fresh_key``): each test that takes ``fresh_key`` gets a key from a seed derived from a
stable hash of its test id (``tests/test_x.py::test_y[param]``), so ``make test`` gives the same
verdict on the same commit, and different tests still get different draws. The environment
changes that:

- ``MINI_ADV_SEED=<int>`` uses that seed (replays one seed that a soak run printed);
- ``MINI_ADV_SEED=random`` draws a fresh OS-random seed for every test (``make soak``);
- ``MINI_ADV_REPEAT=N`` runs every ``fresh_key`` test N times, each with a different seed: the
  first with the seed above, repeat i > 0 with a hash of that seed and i.

The seed is printed (pytest shows it with a failure), recorded in the report's
``user_properties`` (``--junitxml``), and the end of the run lists each failed test's seed with
the command that replays it. Tests that use ``fresh_key`` get the marker ``stats``
(``-m stats`` selects them). New tests use fixed keys (``jax.random.key(<int>)``); a seed that
fails in a soak run becomes such a regression test once its cause is understood.

Helpers shared by several files: ``x64`` (the test runs in float64), ``linear_net`` and
``stack`` (builders of the small networks the attack tests use), ``agg_figure`` and
``agg_pyplot`` (figures that are closed even when the test fails); ``chapter_preset`` (a
chapter's own size preset, for the tests of what its prose claims).
"""

import dataclasses
import hashlib
import os
import pathlib
import re
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import pytest

os.environ.setdefault("MINI_ADV_STATIC", "1")  # no progress bars in test logs

SEED_ENV, REPEAT_ENV = "MINI_ADV_SEED", "MINI_ADV_REPEAT"
_REPEAT_ID = re.compile(r"\[repeat\d+\]$|-repeat\d+(?=[-\]])|(?<=\[)repeat\d+-")


def _seed_setting() -> int | str | None:
    """``MINI_ADV_SEED``: ``None`` (hash of the test id), ``"random"`` or a non-negative int."""
    raw = os.environ.get(SEED_ENV, "").strip()
    if not raw:
        return None
    if raw.lower() == "random":
        return "random"
    try:
        seed = int(raw)
    except ValueError:
        seed = -1
    if seed < 0:
        raise pytest.UsageError(f"{SEED_ENV}={raw!r}: give a non-negative integer (a seed to replay) "
                                f"or 'random' (fresh draws); unset, each test's seed is a hash of its id")
    return seed


def _repeats() -> int:
    raw = os.environ.get(REPEAT_ENV, "").strip() or "1"
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise pytest.UsageError(f"{REPEAT_ENV}={raw!r}: give a positive integer (runs of each fresh_key test)")
    return n


def _hash32(text: str) -> int:
    """A 32-bit seed from ``text``, the same in every process (unlike the salted ``hash()``)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def base_nodeid(nodeid: str) -> str:
    """The test's id without the ``repeatN`` parameter that ``MINI_ADV_REPEAT`` adds."""
    return _REPEAT_ID.sub("", nodeid)


def seed_for(nodeid: str, repeat: int = 0, setting: int | str | None = None) -> int:
    """The seed of ``fresh_key`` for one run of a test: the base seed (a hash of the test id,
    the explicit seed, or an OS-random one) for ``repeat == 0``, a hash of it and ``repeat``
    after that."""
    if setting == "random":
        return int.from_bytes(os.urandom(4), "little")
    base = _hash32(base_nodeid(nodeid)) if setting is None else int(setting)
    return base if repeat == 0 else _hash32(f"{base}/repeat{repeat}")


def replay_command(nodeid: str, seed: int) -> str:
    """The shell line that runs this one test again with this seed."""
    python = sys.executable
    rel = os.path.relpath(python)
    return f"{SEED_ENV}={seed} {rel if not rel.startswith('..') else python} -m pytest '{base_nodeid(nodeid)}'"


def pytest_configure(config):
    _seed_setting(), _repeats()  # a bad value stops the run before collection


def pytest_report_header(config):
    setting, n = _seed_setting(), _repeats()
    how = {None: "a hash of each test's id", "random": "fresh OS-random draws"}.get(setting, f"{SEED_ENV}={setting}")
    return f"fresh_key seeds: {how}" + (f", {n} runs of each ({REPEAT_ENV}={n})" if n > 1 else "")


def pytest_generate_tests(metafunc):
    """MINI_ADV_REPEAT=N runs every fresh-key test N times, with N different seeds."""
    n = _repeats()
    if n > 1 and "fresh_key" in metafunc.fixturenames:
        metafunc.parametrize("fresh_key", range(n), indirect=True, ids=[f"repeat{i}" for i in range(n)])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark the tests that use ``fresh_key`` with ``stats`` (before ``-m`` selects)."""
    for item in items:
        if "fresh_key" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stats)


@pytest.fixture
def fresh_key(request):
    """A key from the seed :func:`seed_for` gives this test (see the module's docstring):
    hashed from the test id by default, ``MINI_ADV_SEED`` to replay or draw fresh ones."""
    seed = seed_for(request.node.nodeid, getattr(request, "param", 0), _seed_setting())
    request.node.user_properties.append(("seed", seed))
    print(f"fresh seed: {seed} (replay: {replay_command(request.node.nodeid, seed)})")
    return jax.random.key(seed)


# ---- helpers shared by several test files -----------------------------------------------


@pytest.fixture
def x64():
    """The test runs in float64 (:func:`mini_adv.runtime.float64`, i.e. ``jax_enable_x64``);
    arrays it creates are float64 by default. For part of a test, use
    ``with runtime.float64():`` instead."""
    from mini_adv import runtime

    with runtime.float64():
        yield


def _linear_net(key: jax.Array, d: int, dtype=None):
    from mini_adv import nets

    w = jax.random.normal(key, (d, 1), dtype=dtype)
    return nets.MLPParams(kernels=(w,), readout=jnp.ones(1, dtype=dtype), activation="identity")


@pytest.fixture
def linear_net():
    """Builder ``linear_net(key, d, dtype=None)`` of f(x) = ⟨w, x⟩ as an ``MLPParams``: identity
    activation, one hidden unit of weights w ~ N(0, I_d) (shape (d, 1)), readout 1. Its exact
    flip distance is |⟨w, x⟩|/‖w‖."""
    return _linear_net


def _stack(key: jax.Array, N: int = 5, n: int = 12, widths: tuple[int, ...] = (24, 12, 6)):
    from mini_adv import data, nets

    k1, k2 = jax.random.split(key)
    params = nets.init_params(k1, list(widths), n=N)
    X = data.sphere_batches(k2, N, n, widths[0])
    return params, X


@pytest.fixture
def stack():
    """Builder ``stack(key, N=5, n=12, widths=(24, 12, 6)) -> (params, X)``: N random networks of
    these widths stacked on a leading axis (``nets.init_params(..., n=N)``) and, for each, n
    inputs on the sphere of radius √d (``data.sphere_batches``), ``X`` of shape (N, n, d) with
    d = widths[0]."""
    return _stack


def chapter_preset(chapter: str, preset: str = "cpu") -> dict:
    """The size preset of a book chapter, as its ``runtime.sizes(cpu=dict(...), gpu=dict(...))``
    cell writes it: ``chapter_preset("ch3")["dims"]``. A test that asserts what a chapter's prose
    says reads the chapter's own sizes from here, so that chapter and test cannot drift apart.

    Raises:
        AssertionError: no such chapter, no ``runtime.sizes`` cell, or a preset that is not a
            literal ``dict(...)`` of constants.
    """
    import ast
    import json

    book = pathlib.Path(__file__).resolve().parents[1] / "book"
    matches = sorted(book.glob(f"{chapter}_*.ipynb")) or sorted(book.glob(f"{chapter}.ipynb"))
    assert matches, f"no notebook {chapter}_*.ipynb in {book}"
    for cell in json.loads(matches[0].read_text())["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] != "code" or "runtime.sizes(" not in src:
            continue
        lines = [line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))]
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "sizes":
                for kw in node.keywords:
                    if kw.arg == preset:
                        assert isinstance(kw.value, ast.Call), f"{chapter}: {preset} preset is not dict(...)"
                        return {k.arg: ast.literal_eval(k.value) for k in kw.value.keywords}
    raise AssertionError(f"{chapter}: no runtime.sizes({preset}=dict(...)) cell")


@pytest.fixture
def agg_figure():
    """A fresh 6×4 in figure on the non-interactive Agg canvas, outside pyplot (nothing global
    to leak), cleared after the test whether it passed or failed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    yield fig
    fig.clf()


@pytest.fixture
def agg_pyplot():
    """``matplotlib.pyplot`` on the Agg backend, for code that creates its figures with pyplot;
    every figure is closed after the test, whether it passed or failed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        yield plt
    finally:
        plt.close("all")


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


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[int, str, float]:
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "MINI_ADV_STATIC": "1", **(env or {})})
    return proc.returncode, proc.stdout + proc.stderr, time.time() - t0


@pytest.fixture(scope="session")
def build_env(tmp_path_factory) -> dict[str, str]:
    """Environment of the book builds: JAX's compilation cache in an empty temporary folder
    (``MINI_ADV_JAX_CACHE``), not the user's ``~/.cache``, so no build reuses an earlier run's."""
    return {"MINI_ADV_JAX_CACHE": str(tmp_path_factory.mktemp("jax-cache"))}


@pytest.fixture(scope="session")
def public_site(build_env) -> Site:
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
    rc, log, seconds = _run([jb, "build", str(ROOT), "-W", "--keep-going"], build_env)
    if rc != 0:
        pytest.fail(f"the book build failed (exit {rc}):\n{log[-6000:]}", pytrace=False)
    return Site(ROOT / "_build", log, seconds)


@pytest.fixture(scope="session")
def student_site(public_site: Site, build_env) -> Site:
    """The student edition (``make student``), built after the public one to reuse its cache.

    With ``MINI_ADV_BUILD``, a prebuilt ``student/html`` there is used, or built if missing.
    """
    site = Site(public_site.build / "student")
    if public_site.seconds is None and (site.html / "index.html").exists():
        return site
    rc, log, seconds = _run([sys.executable, str(ROOT / "tools" / "student_edition.py"),
                             "--public-build", str(public_site.build), "--output", str(site.build)], build_env)
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
    where the browser test saved its screenshots, and the seed of every failed fresh_key test
    with the line that replays it."""
    lines = getattr(config, "_mini_adv_chapter_times", None)
    if lines:
        terminalreporter.section("chapter execution times (clean build)")
        for line in lines:
            terminalreporter.write_line(line)
    for folder in _SCREENSHOT_DIRS:
        terminalreporter.write_line(f"browser screenshots (one per page and edition): {folder}")
    failed = [r for r in terminalreporter.stats.get("failed", []) + terminalreporter.stats.get("error", [])
              if dict(getattr(r, "user_properties", ())).get("seed") is not None]
    if failed:
        terminalreporter.section("fresh_key seeds of the failed tests (replay each with its line)")
        for report in failed:
            seed = dict(report.user_properties)["seed"]
            terminalreporter.write_line(f"{report.nodeid}  seed {seed}")
            terminalreporter.write_line(f"    {replay_command(report.nodeid, seed)}")

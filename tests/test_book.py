"""The book builds from a clean cache with warnings as errors, executing every chapter; the
student edition builds from the same sources and no solution text reaches it; Colab's chapter
run (tools/run_chapters.py) covers every chapter, with the package as pip installs it."""

import fnmatch
import json
import pathlib
import re
import subprocess
import sys
import tomllib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import chapter_times  # noqa: E402
import colab_python  # noqa: E402
import instructor_tables  # noqa: E402,F401
import run_chapters  # noqa: E402
import student_edition  # noqa: E402
import sync_colab  # noqa: E402


CLOSING = "book/regimes"  # the closing chapter (a reading chapter), last in _toc.yml's chapters


def chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [f for f in files if (ROOT / f"{f}.ipynb").exists()]


def test_every_notebook_is_in_the_toc_clean_and_has_the_colab_cell():
    listed = {f"{f}.ipynb" for f in chapters()}
    for nb in sync_colab.notebooks():
        assert str(nb.relative_to(ROOT)) in listed, f"{nb.name} is not in _toc.yml"
        assert sync_colab.problems(nb, sync_colab.install_cell_source()) == [], nb.name
        first_code = next(c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
        src = "".join(first_code["source"])
        pip_lines = [line for line in src.splitlines() if "pip install" in line]
        assert pip_lines and not any("jax" in line for line in pip_lines), "the Colab cell must not install jax"


def test_the_colab_run_executes_every_chapter_of_the_toc():
    """Every notebook of the table of contents, the closing chapter included, in its order."""
    assert [str(p.relative_to(ROOT)) for p in run_chapters.chapters()] == [f"{c}.ipynb" for c in chapters()]


def test_pip_installs_every_subpackage_of_mini_adv():
    """A regular install (Colab's ``pip install``, not the editable one of .venv) holds only the
    packages pyproject.toml names: each folder of mini_adv/ with an __init__.py must be one."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    find = tool.get("packages", {}).get("find") if isinstance(tool.get("packages"), dict) else None
    on_disk = sorted(".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "mini_adv").rglob("__init__.py"))
    if find is None:
        missing = [p for p in on_disk if p not in tool.get("packages", [])]
    else:
        missing = [p for p in on_disk if not any(fnmatch.fnmatchcase(p, pat) for pat in find.get("include", ["*"]))]
    assert not missing, (f"{missing} not in pyproject.toml's [tool.setuptools] packages: a pip install "
                         f"(Colab's) would lack them; list them, or use [tool.setuptools.packages.find] "
                         f'include = ["mini_adv*"]')


def test_the_chapter_runner_reports_versions_that_are_not_the_pins(tmp_path):
    import pytest as pytest_module

    req = tmp_path / "requirements.txt"
    req.write_text(f"# comment\npytest=={pytest_module.__version__}\nno-such-package-mini-adv==1.0\n"
                   f"loose>=2\nPyYAML == 0.0.1  # pinned wrong\n")
    wanted = run_chapters.pins(req)
    assert wanted == {"pytest": pytest_module.__version__, "no-such-package-mini-adv": "1.0", "PyYAML": "0.0.1"}
    wrong = run_chapters.version_mismatches(wanted)
    assert len(wrong) == 2 and wrong[0].startswith("no-such-package-mini-adv: pinned 1.0, installed nothing")
    assert wrong[1].startswith("PyYAML: pinned 0.0.1, installed ")


def test_the_colab_python_finder_accepts_only_the_version_asked_for():
    here = "%d.%d" % sys.version_info[:2]
    assert colab_python.works(sys.executable, here)
    assert not colab_python.works(sys.executable, "3.99")
    assert colab_python.find("3.99") is None


def _markdown(chapter: str) -> str:
    cells = json.loads((ROOT / f"{chapter}.ipynb").read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


# An exercise's title ends with "(kind, difficulty, N min)", e.g. "(proof, ★★, 30 min)":
# ★ routine, ★★ needs an idea, ★★★ a research-level step or a long computation.
KINDS = ("pen and paper", "proof", "code", "experiment", "experiment design")
_TITLE = re.compile(r"\(([^(),]+), ★{1,3}, \d+ min\)$")
SOLUTION_WORDS = 40


def test_every_exercise_has_a_time_estimate_and_one_solution_that_stripping_removes():
    for chapter in chapters():
        text = _markdown(chapter)
        exercises = re.findall(r"^:{3,}\{exercise\} (.*)\n:label: (\S+)", text, flags=re.M)
        assert len(exercises) >= 3, f"{chapter}: fewer than three exercises"
        for title, _ in exercises:
            m = _TITLE.search(title)
            assert m, f"{chapter}: no '(kind, ★…, N min)' at the end of {title!r}"
            assert m[1] in KINDS, f"{chapter}: kind {m[1]!r} of {title!r} is not one of {KINDS}"
        blocks = student_edition.solution_blocks(text)
        targets = sorted(re.match(r"\S+ (\S+)", b)[1] for b in blocks)
        assert targets == sorted(label for _, label in exercises), f"{chapter}: solutions {targets}"
        assert all(":class: dropdown" in b.splitlines()[1:3] for b in blocks), f"{chapter}: not collapsed"
        for b in blocks:  # a full solution, not a hint: at least SOLUTION_WORDS words
            words = len(re.findall(r"\w+", "\n".join(b.splitlines()[1:-1])))
            assert words >= SOLUTION_WORDS, f"{chapter}: the solution {b.splitlines()[0]!r} has {words} words"
        stripped = student_edition.strip_solutions(text)
        assert "{solution}" not in stripped and stripped.count("{exercise}") == len(exercises)


def _exercises(chapter: str) -> list[tuple[str, str, str, str, int]]:
    """(label, title, kind, difficulty, minutes) of every exercise of a chapter."""
    found = re.findall(r"^:{3,}\{exercise\} (.*) \(([^(),]+), (★{1,3}), (\d+) min\)\n:label: (\S+)",
                       _markdown(chapter), flags=re.M)
    return [(label, title, kind, stars, int(minutes)) for title, kind, stars, minutes, label in found]


def test_every_chapter_has_two_proof_exercises_and_keeps_its_kinds():
    """Each chapter assigns at least two proofs; every chapter but the closing one (chapters 1–6)
    also keeps a pen-and-paper, a code and an experiment-design exercise (the closing chapter is a
    reading chapter: proofs and any other kinds)."""
    for chapter in chapters():
        kinds = [kind for _, _, kind, _, _ in _exercises(chapter)]
        assert kinds.count("proof") >= 2, f"{chapter}: {kinds.count('proof')} proof exercises, want 2"
        if chapter != CLOSING:
            missing = {"pen and paper", "code", "experiment design"} - set(kinds)
            assert not missing, f"{chapter}: no {sorted(missing)} exercise"


def _chapter_times(chapter: str) -> tuple[int, int]:
    m = re.search(r"Time: about (\d+) minutes of reading, (\d+) minutes of exercises", _markdown(chapter))
    assert m, f"{chapter}: no 'Time: about N minutes of reading, M minutes of exercises' line"
    return int(m[1]), int(m[2])


def test_chapter_time_estimates_add_up():
    for chapter in chapters():
        _, exercise_minutes = _chapter_times(chapter)
        total = sum(minutes for *_, minutes in _exercises(chapter))
        assert exercise_minutes == total, (f"{chapter}: the top says {exercise_minutes} minutes of exercises, "
                                           f"its exercises' estimates add up to {total}")


def test_instructor_page_lists_every_chapter_and_exercise_as_the_chapters_do():
    page = (ROOT / "book" / "instructor.md").read_text()
    rows = re.findall(r"^\| (\d) \| \{numref\}`(\S+)`: [^|]+\| ([^|]+?) \| (★{1,3}) \| (\d+) min \|",
                      page, flags=re.M)
    listed = {label: (int(n), kind, stars, int(minutes)) for n, label, kind, stars, minutes in rows}
    expected = {}
    for n, chapter in enumerate(chapters(), start=1):
        reading, _ = _chapter_times(chapter)
        exercises = _exercises(chapter)
        total = sum(minutes for *_, minutes in exercises)
        row = (f"| {n}. {{doc}}`{pathlib.Path(chapter).name}` | {reading} min | {total} min "
               f"({len(exercises)} exercises) |")
        assert row in page, f"instructor page: expected the row {row!r}"
        expected |= {label: (n, kind, stars, minutes) for label, _, kind, stars, minutes in exercises}
    assert listed == expected, f"instructor page's exercise table: {set(listed.items()) ^ set(expected.items())}"


def test_instructor_tables_are_written_from_the_chapters():
    import instructor_tables

    page = (ROOT / "book" / "instructor.md").read_text()
    assert instructor_tables.updated(page) == page, "run python tools/instructor_tables.py"


@pytest.mark.book
def test_book_builds_clean_with_warnings_as_errors(public_site, pytestconfig):
    if public_site.seconds is not None:
        print(f"\nbook built in {public_site.seconds:.0f} s")
    for line in public_site.log.splitlines():
        if re.search(r"Executing|Executed|executed", line):
            print(line.strip())
    # per-chapter execution times from the build's jupyter-cache, printed at the end of the
    # test run by the terminal-summary hook in conftest.py (limits: 90 s a chapter, 5 min)
    times = chapter_times.chapter_times(public_site.build)
    built = [] if public_site.seconds is None else [f"book built in {public_site.seconds:.0f} s"]
    pytestconfig._mini_adv_chapter_times = built + chapter_times.table(times)
    assert set(times) >= {f"{c}.ipynb" for c in chapters()}, f"missing execution records: {times}"
    for chapter in chapters():
        page = (public_site.html / f"{chapter}.html").read_text()
        assert "Traceback" not in page, f"{chapter} shows a traceback"
        assert page.count("cell_output") > 3, f"{chapter} has no executed outputs"
    assert (public_site.html / "index.html").exists()


PAGE_LIMIT = 1_000_000  # bytes: a chapter page with its figures and slider frames
FIGURE_DPI = 150


def _png_dpi(data: bytes) -> float:
    import io

    from PIL import Image

    return float(Image.open(io.BytesIO(data)).info.get("dpi", (0, 0))[0])


@pytest.mark.book
def test_chapter_pages_weigh_under_a_megabyte_and_their_figures_are_sharp(public_site):
    """Every chapter page, with the figures it loads and its slider frames, weighs under
    PAGE_LIMIT, and every figure and frame is rendered at FIGURE_DPI or more."""
    import base64

    for chapter in chapters():
        page = public_site.html / f"{chapter}.html"
        html = page.read_text()
        images = sorted({(page.parent / src).resolve()
                         for src in re.findall(r'<img[^>]*\ssrc="([^"]+\.png)"', html)})
        weight = len(html.encode()) + sum(p.stat().st_size for p in images)
        assert weight < PAGE_LIMIT, f"{chapter}: {weight / 1e6:.2f} MB with its {len(images)} images"
        figures = [p.read_bytes() for p in images if p.parent.name == "_images"]
        frames = [base64.b64decode(m.replace("\\\n", "")) for m in
                  re.findall(r'data:image/png;base64,((?:[A-Za-z0-9+/=]|\\\n)+)', html)]
        assert figures, f"{chapter}: no figure"
        low = [round(_png_dpi(b)) for b in figures + frames if _png_dpi(b) < FIGURE_DPI - 0.5]
        assert not low, f"{chapter}: {len(low)} figures or frames below {FIGURE_DPI} dpi: {low[:5]}"


# ---- no solution text in the student edition --------------------------------------------

# Markup that renders differently from its source (maths, roles, inline code, emphasis,
# links, quotes and dashes that Sphinx turns typographic): prose is compared between them.
_MARKUP = re.compile(r"\$\$.*?\$\$|\$[^$]*\$|\{[^}]*\}`[^`]*`|`[^`]*`|\]\([^)]*\)"
                     r"|\.\.\.|--|[*_\"'\[\]<>“”‘’—–]")


def _squash(text: str) -> str:
    return " ".join(text.split())


_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


def solution_fragments(block: str) -> tuple[list[str], list[str]]:
    """Pieces of a solution's text that appear verbatim in its rendered HTML: its code lines
    of at least 20 characters, and its runs of at least six words of prose between two
    pieces of markup."""
    body = block.splitlines()[1:-1]
    code, prose, in_code = [], [], False
    for line in body:
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            if len(line.strip()) >= 20:
                code.append(_squash(line))
        elif not line.startswith(":"):
            line = _LIST_MARKER.sub("", line)  # "3. " or "- " is not part of the rendered text
            for piece in _MARKUP.split(line):
                piece = _squash(piece).strip(" ,.;:()")
                if len(piece.split()) >= 6:
                    prose.append(piece)
    return code, prose


def _soup(path: pathlib.Path):
    from bs4 import BeautifulSoup  # in requirements.txt, not in Colab's test set

    return BeautifulSoup(path.read_text(), "html.parser")


def _html_text(path: pathlib.Path, *, drop_solutions: bool = False) -> str:
    soup = _soup(path)
    if drop_solutions:
        for sol in soup.select(".solution"):
            sol.decompose()
    return _squash(soup.get_text())


def _file_text(path: pathlib.Path) -> str:
    """What a reader can get out of a built file: the text of a page, the cells of a notebook."""
    if path.suffix == ".html":
        return _html_text(path)
    try:
        raw = path.read_text()
    except UnicodeDecodeError:
        return ""  # images, fonts
    if path.suffix == ".ipynb":
        raw += "\n".join("".join(c["source"]) for c in json.loads(raw)["cells"])
    return _squash(raw)


def _search_terms(html: pathlib.Path) -> tuple[dict, list]:
    index = json.loads(re.search(r"setIndex\((.*)\)", (html / "searchindex.js").read_text(), re.S)[1])
    return {**index["terms"], **index["titleterms"]}, index["docnames"]


@pytest.mark.book
def test_student_edition_has_no_solution_text(public_site, student_site):
    from sphinx.search.en import SearchEnglish

    if student_site.seconds is not None:
        print(f"\nstudent edition built in {student_site.seconds:.0f} s")
    pub, stu = public_site.html, student_site.html
    elsewhere = " ".join(_html_text(p, drop_solutions=True) for p in sorted(pub.rglob("*.html")))
    fragments = []
    for chapter in chapters():
        soup = _soup(pub / f"{chapter}.html")
        shown = soup.select("div.solution")
        blocks = student_edition.source_solutions(ROOT / f"{chapter}.ipynb")
        assert len(shown) == len(blocks), f"{chapter}: {len(shown)} solutions on the page, {len(blocks)} in the source"
        assert all("dropdown" in s["class"] for s in shown), f"{chapter}: a solution is not collapsed"
        shown_text = " ".join(_squash(s.get_text()) for s in shown)
        for block in blocks:
            # A line of a solution counts where no page outside the solutions shows it: the
            # exercise's own text and its stub cell (the function's signature, the checker
            # call) are given to students, everything else is the solution's own.
            code, prose = solution_fragments(block)
            mine = [f for f in code + prose if f not in elsewhere]
            assert mine, f"{chapter}: no line of this solution is distinctive:\n{block}"
            missing = [f for f in mine if f not in shown_text]
            assert not missing, f"{chapter}: the public edition does not show {missing}"
            fragments += mine
    print(f"{len(fragments)} solution fragments checked")

    leaks = {}
    for path in sorted(p for p in stu.rglob("*") if p.is_file()):
        text = _file_text(path)
        found = [f for f in fragments if f in text]
        if found:
            leaks[str(path.relative_to(stu))] = found[:3]
    assert not leaks, f"solution text in the student edition: {leaks}"

    # The search index holds stems, not lines: no stem that only solutions use may be there.
    lang = SearchEnglish({})
    def stems(text):
        return {lang.stem(w).lower() for w in lang.split(text)}
    only_in_solutions = set()
    for chapter in chapters():
        soup = _soup(pub / f"{chapter}.html")
        only_in_solutions |= stems(" ".join(s.get_text() for s in soup.select("div.solution")))
    pub_terms, _ = _search_terms(pub)
    only_in_solutions = (only_in_solutions - stems(elsewhere)) & set(pub_terms)
    stu_terms, stu_docs = _search_terms(stu)
    assert len(only_in_solutions) >= 10, f"too few solution-only search terms: {only_in_solutions}"
    assert not only_in_solutions & set(stu_terms), sorted(only_in_solutions & set(stu_terms))
    assert "book/instructor" not in stu_docs


def test_the_chapter_runner_stops_at_a_failing_cell_and_names_it(tmp_path):
    """Two notebooks at a time (``--jobs 2``): the one whose cell raises fails the run with its
    name and cell number; exit status 1."""
    def notebook(name, source):
        nb = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                         "source": [source]}],
              "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                          "language": "python"}},
              "nbformat": 4, "nbformat_minor": 5}
        path = tmp_path / name
        path.write_text(json.dumps(nb))
        return str(path)

    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "run_chapters.py"), "--jobs", "2",
                           notebook("good.ipynb", "x = 1"), notebook("bad.ipynb", "1 / 0")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED bad.ipynb: cell 0 failed" in proc.stderr and "ZeroDivisionError" in proc.stderr

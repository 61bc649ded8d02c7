"""Every theorem, lemma, proposition and corollary of the book says where it comes from.

The last word of each such box's title is exactly one of four provenance tags, defined once on the
notation page (section "Where each statement comes from", label ``provenance``):

- ``[paper]``: a cited paper's result, paraphrased;
- ``[standard]``: a textbook result, cited;
- ``[heuristic]``: the book's own heuristic argument or conjecture;
- ``[reconstruction]``: the book's reconstruction of a step of a paper's proof.

Definitions, remarks, algorithms and proofs carry no tag. The tags stay literal text in the sources (the
notebooks' markdown cells and the ``.md`` pages), which is what these tests read: they parse the MyST
``{prf:...}`` directives in both fence forms (backticks and ``:::`` colons) of every page in ``_toc.yml``.
No placeholder ("to be checked", "to be verified", TODO) may remain in the book's sources.

The parser itself is tested on synthetic notebooks (a box without a tag, with two tags, with one), so a
parser that silently matches nothing cannot pass; the book's own count of tagged boxes is also bounded below.
"""

from __future__ import annotations

import json
import pathlib
import re
from dataclasses import dataclass

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"

TAGS = ("paper", "standard", "heuristic", "reconstruction")
TAGGED_KINDS = ("theorem", "lemma", "proposition", "corollary")

# Tagged boxes (TAGGED_KINDS) in the chapters of _toc.yml at commit bdb8ed3 (ch1: 4, ch2: 5, ch3: 4,
# ch4: 5, ch5: 7). The parser must find at least this many: fewer means it has stopped matching the
# sources (or boxes were removed: then lower this number in the same commit, on purpose).
MIN_TAGGED_BOXES = 25

_OPEN = re.compile(r"^[ \t]*(?P<fence>`{3,}|:{3,})\{prf:(?P<kind>[A-Za-z-]+)\}(?P<title>[^\n]*)$", re.M)
_TAG = re.compile(r"\[(?:" + "|".join(TAGS) + r")\]")
_TITLE = re.compile(r"(?P<name>.*\S)\s+\[(?P<tag>" + "|".join(TAGS) + r")\]")
_PLACEHOLDERS = re.compile(r"to be (?:checked|verified)|\bTODO\b|\bFIXME\b", re.I)


@dataclass(frozen=True)
class Box:
    """One ``{prf:kind}`` directive: where it is and its title (as written, stripped)."""

    path: pathlib.Path
    cell: int | None  # 0-based index into the notebook's cells; None for a .md page
    line: int  # 1-based line of the opening fence, inside the cell (notebook) or the file (.md)
    kind: str
    title: str

    def where(self) -> str:
        rel = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        cell = f", cell {self.cell}" if self.cell is not None else ""
        return f"{rel}{cell}, line {self.line}, {{prf:{self.kind}}} {self.title!r}"


def boxes_in_text(text: str, path: pathlib.Path, cell: int | None = None) -> list[Box]:
    """Every ``{prf:...}`` opening fence in one markdown text, in order."""
    return [Box(path, cell, text.count("\n", 0, m.start()) + 1, m["kind"].lower(), m["title"].strip())
            for m in _OPEN.finditer(text)]


def markdown_sources(path: pathlib.Path) -> list[tuple[int | None, str]]:
    """(cell index, text) of each markdown cell of a notebook, or [(None, text)] for a .md page."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return [(i, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]
    return [(None, path.read_text(encoding="utf-8"))]


def boxes_in(path: pathlib.Path) -> list[Box]:
    return [box for cell, text in markdown_sources(path) for box in boxes_in_text(text, path, cell)]


def problems(boxes: list[Box]) -> list[str]:
    """One message per box whose title breaks the provenance rule (empty list: all fine)."""
    found = []
    for box in boxes:
        tags = _TAG.findall(box.title)
        if box.kind in TAGGED_KINDS:
            m = _TITLE.fullmatch(box.title)
            if m is None:
                if not box.title:
                    why = "no title (a name, then one of the tags)"
                elif _TAG.fullmatch(box.title):
                    why = "its title is only a tag: put the box's name before it"
                else:
                    why = (f"its title must end with one of {', '.join(f'[{t}]' for t in TAGS)}"
                           + (f" (found {', '.join(tags)} elsewhere in it)" if tags else ""))
                found.append(f"{box.where()}: {why}")
            elif _TAG.search(m["name"]):
                found.append(f"{box.where()}: more than one provenance tag ({', '.join(tags)}); keep only the last")
        elif tags:
            found.append(f"{box.where()}: a {box.kind} carries no provenance tag (found {', '.join(tags)})")
    return found


def toc_pages() -> list[pathlib.Path]:
    """The source file (.ipynb or .md) of every page in _toc.yml, root first."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())

    def entries(items):
        for item in items or []:
            if "file" in item:
                yield item["file"]
            yield from entries(item.get("sections"))
            yield from entries(item.get("chapters"))

    names = [toc["root"], *entries(toc.get("chapters")), *(f for part in toc.get("parts", [])
                                                             for f in entries(part.get("chapters")))]
    pages = []
    for name in names:
        matches = [ROOT / f"{name}{ext}" for ext in (".ipynb", ".md") if (ROOT / f"{name}{ext}").exists()]
        assert matches, f"_toc.yml lists {name}, which has no .ipynb or .md file"
        pages.append(matches[0])
    return pages


def book_boxes() -> list[Box]:
    return [box for page in toc_pages() for box in boxes_in(page)]


# ---------------------------------------------------------------------------------------------
# The book
# ---------------------------------------------------------------------------------------------

def test_every_theorem_lemma_proposition_and_corollary_ends_with_one_provenance_tag():
    found = problems(book_boxes())
    assert not found, (f"{len(found)} box(es) break the provenance rule (the last word of the title of every "
                       f"theorem, lemma, proposition and corollary is exactly one of [paper], [standard], "
                       f"[heuristic], [reconstruction]; see book/notation.md, 'Where each statement comes "
                       f"from'):\n  " + "\n  ".join(found))


def test_the_parser_sees_the_books_boxes():
    boxes = book_boxes()
    tagged = [b for b in boxes if b.kind in TAGGED_KINDS]
    per_page = {p.name: sum(b.path == p for b in tagged) for p in toc_pages()}
    assert len(tagged) >= MIN_TAGGED_BOXES, (f"found only {len(tagged)} theorem/lemma/proposition/corollary "
                                             f"boxes (at least {MIN_TAGGED_BOXES} expected): {per_page}")
    chapters = [p for p in toc_pages() if p.suffix == ".ipynb" and p.name.startswith("ch")]
    assert chapters and all(per_page[p.name] > 0 for p in chapters), f"a chapter without boxes? {per_page}"


def test_the_notation_page_defines_the_four_tags_and_stochastic_order():
    page = (BOOK / "notation.md").read_text(encoding="utf-8")
    assert "(provenance)=\n## " in page, "notation.md: no (provenance)= label on a section for the chapters to link to"
    section = page.split("(provenance)=\n## ", 1)[1].split("\n## ", 1)[0]
    for tag in TAGS:
        assert re.search(rf"^\| \[{tag}\] \| \S", section, flags=re.M), (
            f"notation.md, 'Where each statement comes from': no table row defining [{tag}]")
    for label in ("(stochastic-order)=", "(asymptotic-notation)="):
        assert label in page, f"notation.md: no {label} label"
    for symbol in ("O_P", r"\Omega_P"):
        assert re.search(rf"^\| \$X_d = {re.escape(symbol)}\(a_d\)\$ \| for every \$\\eps > 0\$", page,
                         flags=re.M), f"notation.md: no table row defining X_d = {symbol}(a_d) by 'for every eps'"
    assert "high probability" in page and "$\\eps$-form" in page


def test_no_placeholder_is_left_in_the_books_sources():
    found = []
    for path in sorted(BOOK.rglob("*")):
        if path.suffix not in {".md", ".ipynb", ".bib", ".yml", ".py"} or "_build" in path.parts:
            continue
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            texts = [(f", cell {i}", "".join(c["source"])) for i, c in enumerate(cells)]
        else:
            texts = [("", path.read_text(encoding="utf-8"))]
        for where, text in texts:
            for m in _PLACEHOLDERS.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{path.relative_to(ROOT)}{where}, line {line}: {m[0]!r}")
    assert not found, ("placeholders left in book/ (say what is confirmed and what is the book's reading "
                       "instead):\n  " + "\n  ".join(found))


def test_every_bibliography_entry_belongs_to_a_group_of_the_references_page():
    """references.md lists the cited entries in groups, one ``{bibliography}`` per ``keywords`` value; an
    entry whose ``keywords`` names no group would be missing from the page (and its citations unresolved)."""
    # the book's build tools (requirements.txt), not in a reader's (Colab's) environment
    parse_file = pytest.importorskip("pybtex.database").parse_file

    page = (BOOK / "references.md").read_text(encoding="utf-8")
    groups = re.findall(r'^:filter: cited and keywords == "([^"]+)"$', page, flags=re.M)
    assert groups and len(groups) == len(set(groups)) == page.count("{bibliography}"), (
        f"references.md: every {{bibliography}} needs one ':filter: cited and keywords == \"...\"' line: {groups}")
    entries = parse_file(str(BOOK / "references.bib")).entries
    lost = {key: e.fields.get("keywords", "") for key, e in entries.items() if e.fields.get("keywords") not in groups}
    assert not lost, f"references.bib: entries whose keywords field is not one of {groups}: {lost}"


# ---------------------------------------------------------------------------------------------
# The parser, on synthetic notebooks
# ---------------------------------------------------------------------------------------------

def _notebook(tmp_path: pathlib.Path, *markdown: str, name: str = "fake.ipynb") -> pathlib.Path:
    cells = [{"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {}, "outputs": [],
              "source": [":::{prf:theorem} In a code cell, not a box\n"]}]
    cells += [{"cell_type": "markdown", "id": f"m{i}", "metadata": {},
               "source": text.splitlines(keepends=True)} for i, text in enumerate(markdown, start=1)]
    path = tmp_path / name
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_a_box_with_exactly_one_final_tag_passes(tmp_path):
    nb = _notebook(tmp_path,
                   "Text.\n\n:::{prf:theorem} Daniely & Shacham (2020), informal [paper]\n:label: thm-a\n\nBody.\n:::\n",
                   "```{prf:lemma} Random cosines [standard]\nBody.\n```\n"
                   "::::{prf:proposition} The flip law (for one step) [heuristic]\n::::\n"
                   ":::{prf:corollary} Step (ii) of the proof [reconstruction]   \n:::\n"
                   ":::{prf:definition} Flip distance\n:::\n:::{prf:proof} (sketch)\n:::\n")
    boxes = boxes_in(nb)
    assert [(b.cell, b.kind) for b in boxes] == [(1, "theorem"), (2, "lemma"), (2, "proposition"),
                                                 (2, "corollary"), (2, "definition"), (2, "proof")]
    assert boxes[0].line == 3 and boxes[0].title == "Daniely & Shacham (2020), informal [paper]"
    assert problems(boxes) == []


def test_a_box_without_a_tag_fails_and_says_where(tmp_path):
    nb = _notebook(tmp_path, "intro\n", ":::{prf:lemma} The start is close to the boundary\n:::\n")
    found = problems(boxes_in(nb))
    assert len(found) == 1
    assert "fake.ipynb, cell 2, line 1" in found[0] and "The start is close to the boundary" in found[0]
    assert "must end with one of [paper], [standard], [heuristic], [reconstruction]" in found[0]


def test_a_box_with_two_tags_or_a_misplaced_tag_fails(tmp_path):
    nb = _notebook(tmp_path,
                   ":::{prf:theorem} Bubeck et al. [paper] [heuristic]\n:::\n",
                   ":::{prf:theorem} A [paper] result, informal\n:::\n",
                   ":::{prf:lemma} Gaussian conditioning [Paper]\n:::\n",
                   ":::{prf:corollary}\n:::\n",
                   ":::{prf:proposition} [standard]\n:::\n",
                   ":::{prf:remark} A remark [heuristic]\n:::\n")
    found = problems(boxes_in(nb))
    assert len(found) == 6, found
    assert "more than one provenance tag ([paper], [heuristic])" in found[0]
    assert "must end with one of" in found[1] and "found [paper] elsewhere" in found[1]
    assert "must end with one of" in found[2]  # tags are lower case
    assert "no title" in found[3]
    assert "only a tag" in found[4]
    assert "a remark carries no provenance tag" in found[5]


def test_boxes_in_a_markdown_page_are_read_too(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n```{prf:theorem} Untagged\n```\n\n:::{prf:lemma} Tagged [standard]\n:::\n")
    boxes = boxes_in(page)
    assert [(b.cell, b.line, b.kind) for b in boxes] == [(None, 3, "theorem"), (None, 6, "lemma")]
    assert len(problems(boxes)) == 1 and "page.md, line 3" in problems(boxes)[0]


def test_the_badge_transform_wraps_only_a_trailing_tag():
    """book/_ext/provenance_badges.py turns the tag that ends a title into a badge node (the build
    itself is tested by test_book.py's full build)."""
    import importlib.util

    nodes = pytest.importorskip("docutils.nodes")  # a build tool, not in Colab's environment

    spec = importlib.util.spec_from_file_location("provenance_badges", BOOK / "_ext" / "provenance_badges.py")
    badges = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(badges)

    title = nodes.title("", "", nodes.Text(" (Daniely & Shacham, "), nodes.emphasis("", "informal"),
                        nodes.Text(" ["), nodes.Text("paper"), nodes.Text("])"))
    assert badges.badge_title(title) == "paper"
    badge = title[-2]
    assert isinstance(badge, nodes.inline) and badge["classes"] == ["provenance", "provenance-paper"]
    assert badge.astext() == "paper" and title.astext() == " (Daniely & Shacham, informal paper)"
    for text in (" (Untagged)", " (A [paper] result, informal)", " (Tagged [Paper])"):
        title = nodes.title("", "", nodes.Text(text))
        assert badges.badge_title(title) is None and title.astext() == text


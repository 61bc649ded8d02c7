"""The chapters' prose quotes no measured value: no raw look-up of a size preset (``S[...]``)
outside a code block, and no number with four or more significant digits outside maths and
code (a measured value printed to that precision changes with the seed and the runtime; an
exact value of a formula belongs in maths). The cells print the measurements beside their
predictions; the tests of each chapter's claims (``tests/test_claims_ch*.py``) assert what the
prose says the reader sees.

Also: the setup cells (the Colab install cell and the size presets) are collapsed, so that the
first thing a reader sees below the title is the chapter's question, not configuration.
"""

import json
import pathlib
import re

import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


sys.path.insert(0, str(ROOT / "tools"))
from instructor_tables import chapters  # noqa: E402  (the notebooks of _toc.yml, in order)


def _cells(chapter: str) -> list[dict]:
    return json.loads((ROOT / f"{chapter}.ipynb").read_text())["cells"]


_FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1[ \t]*$", re.M | re.S)
_MATH = re.compile(
    r"\$\$.*?\$\$"                      # display maths
    r"|\\begin\{(\w+\*?)\}.*?\\end\{\1\}"  # LaTeX environments
    r"|(?<![\\$])\$(?!\s)[^$\n]+?(?<![\s\\])\$"  # inline maths
    r"|\{math\}`[^`]*`",                # the math role
    re.S)
_ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")  # {cite}`...`, {ref}`...`, {doc}`...`
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\]\([^)\s]*\)|<https?://[^>]*>|https?://\S+")
_OPTION = re.compile(r"^:[\w-]+:.*$", re.M)  # directive options (:label:, :class: ...)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_ARXIV = re.compile(r"arXiv[: ]\s*\d{4}\.\d{4,5}(?:v\d+)?")  # an identifier, not a value
_NUMBER = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")


def prose(markdown: str, *, keep_inline_code: bool = False) -> str:
    """The running text of a markdown cell: without fenced blocks, maths, roles, links,
    directive options and comments; without inline code unless ``keep_inline_code``."""
    text = _COMMENT.sub(" ", markdown)
    text = _FENCE.sub(" ", text)
    text = re.sub(r"^:{3,}\{(?:math|code|code-block|code-cell)\}.*?^:{3,}[ \t]*$", " ", text,
                  flags=re.M | re.S)
    text = _MATH.sub(" ", text)
    text = _ROLE.sub(" ", text)
    if not keep_inline_code:
        text = _CODE.sub(" ", text)
    text = _LINK.sub("]", text)
    text = _ARXIV.sub("arXiv", text)
    return _OPTION.sub(" ", text)


def significant_digits(token: str) -> int:
    """Significant digits of a decimal number as written: ``0.1197`` → 4, ``12.50`` → 4,
    ``4096`` → 4, ``10,000`` → 1 (trailing zeros of an integer are not significant)."""
    digits = token.replace(",", "")
    if "." in digits:
        return len(digits.replace(".", "").lstrip("0"))
    return len(digits.lstrip("0").rstrip("0"))


def precise_numbers(text: str) -> list[str]:
    """Numbers with four or more significant digits in ``text``; years (1900–2099, written as
    plain integers) are not numbers of this kind."""
    found = []
    for token in _NUMBER.findall(text):
        if re.fullmatch(r"(19|20)\d\d", token):
            continue
        if significant_digits(token) >= 4:
            found.append(token)
    return found


def test_the_scanner_sees_prose_numbers_and_skips_maths_code_links_and_years():
    md = ("The flip rate was 0.1197 and $0.1197$ in maths; `x = 0.1197` in code; "
          "[a link](https://arxiv.org/abs/2010.14927), {cite}`vardi2022gradient`, "
          "NeurIPS 2022, arXiv 2202.04347, 1,797 images, 10,000 pairs, 4096 inputs, 3.14 and 12.50.\n"
          "```python\nprint(12345.678)\n```\n$$\n1.23456\n$$\n:label: ex-1234-5678\n")
    assert precise_numbers(prose(md)) == ["0.1197", "1,797", "4096", "12.50"]
    assert significant_digits("0.0012") == 2 and significant_digits("1000") == 1
    assert "S[" in prose("the value `S['n_train']`", keep_inline_code=True)
    assert "S[" not in prose("```python\nS['dims']\n```")


@pytest.mark.parametrize("chapter", chapters())
def test_the_prose_quotes_no_measured_number_and_no_preset_lookup(chapter):
    problems = []
    for i, cell in enumerate(_cells(chapter)):
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"])
        if "S[" in prose(source, keep_inline_code=True):
            problems.append(f"cell {i}: a preset look-up S[...] in the prose")
        numbers = precise_numbers(prose(source))
        if numbers:
            problems.append(f"cell {i}: numbers with four or more significant digits {numbers} "
                            f"(print measurements in a cell; write exact values in maths)")
    assert not problems, f"{chapter}:\n" + "\n".join(problems)


@pytest.mark.parametrize("chapter", chapters())
def test_setup_cells_are_collapsed(chapter):
    """The Colab install cell and the size-preset cell are collapsed (``hide-cell``: input and
    output behind one toggle), so the first thing below the title is the chapter's question."""
    setup = [(i, cell) for i, cell in enumerate(_cells(chapter)) if cell["cell_type"] == "code"
             and ("pip install" in "".join(cell["source"]) or "runtime.sizes(" in "".join(cell["source"]))]
    assert setup, f"{chapter}: expected a Colab cell"
    for i, cell in setup:
        assert "hide-cell" in cell.get("metadata", {}).get("tags", []), f"{chapter}: setup cell {i} not collapsed"


_FIGURE_CALL = re.compile(r"\bfigures\.\w+\.(?:plot|draw)_\w+\(|\bstyle\.slider\(|\bplt\.(?:figure|subplots)\(")


@pytest.mark.parametrize("chapter", chapters())
def test_every_figure_is_followed_by_what_to_see(chapter):
    """A cell that draws a figure is followed by a markdown cell (the sentence that says what to
    see in it) before the next figure or the end of the chapter; a printed table of the same
    measurements may come between them."""
    cells = _cells(chapter)
    draws = [cell["cell_type"] == "code" and bool(_FIGURE_CALL.search("".join(cell["source"])))
             for cell in cells]
    lonely = []
    for i in (i for i, d in enumerate(draws) if d):
        nxt = next((j for j in range(i + 1, len(cells)) if cells[j]["cell_type"] == "markdown" or draws[j]), None)
        if nxt is None or draws[nxt]:
            lonely.append(i)
    assert not lonely, f"{chapter}: figure cells {lonely} are not followed by a sentence saying what to see"

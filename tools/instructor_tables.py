"""Write the instructor page's two tables from the chapters themselves.

    python tools/instructor_tables.py          # rewrite book/instructor.md in place
    python tools/instructor_tables.py --check  # exit 1 if the page is out of date

The chapter table (reading time, exercise time, number of exercises, class meetings) and the
exercise table (kind, difficulty, time, suggested use) are read from each chapter's "Time:
about N minutes of reading" line and its exercise titles, "(kind, ★★, N min)", in the order
of ``_toc.yml``. ``tests/test_book.py`` checks that the page agrees with the chapters.
"""

from __future__ import annotations

import json
import math
import pathlib
import re
import sys

import run_chapters  # tools/, beside this file

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = ROOT / "book" / "instructor.md"
MEETING = 90  # minutes of one class meeting
_EXERCISE = re.compile(r"^:{3,}\{exercise\} (.*) \(([^(),]+), (★{1,3}), (\d+) min\)\n:label: (\S+)", re.M)
_TIME = re.compile(r"Time: about (\d+) minutes of reading, (\d+) minutes of exercises")

def chapters() -> list[str]:
    """The notebooks of ``_toc.yml`` in order, as ``book/<name>`` (``run_chapters.chapters``)."""
    return [str(p.relative_to(ROOT).with_suffix("")) for p in run_chapters.chapters()]


def markdown(chapter: str) -> str:
    cells = json.loads((ROOT / f"{chapter}.ipynb").read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def use(kind: str, minutes: int) -> str:
    """The suggested use of an exercise, from its kind and time (the page's list explains it)."""
    if kind == "pen and paper":
        return "in class" if minutes <= 15 else "homework"
    return {"proof": "homework", "code": "lab or homework", "experiment": "homework",
            "experiment design": "in class"}[kind]


def meetings(reading: int) -> int:
    """Class meetings of MEETING minutes a chapter's reading needs (discussed, not read aloud)."""
    return max(1, math.ceil(reading / MEETING))


def tables() -> tuple[list[str], list[str]]:
    chapter_rows, exercise_rows = [], []
    for n, chapter in enumerate(chapters(), start=1):
        text = markdown(chapter)
        time = _TIME.search(text)
        found = _EXERCISE.findall(text)
        name = pathlib.Path(chapter).name
        if time:
            reading = int(time[1])
            total = sum(int(m) for *_, m, _ in found)
            cells = f"{reading} min | {total} min ({len(found)} exercises)"
        else:
            raise SystemExit(f"{chapter}: no 'Time: about N minutes of reading, M minutes of exercises' line")
        chapter_rows.append(f"| {n}. {{doc}}`{name}` | {cells} | {meetings(reading)} |")
        for title, kind, stars, minutes, label in found:
            exercise_rows.append(f"| {n} | {{numref}}`{label}`: {title} | {kind} | {stars} | {minutes} min "
                                 f"| {use(kind, int(minutes))} |")
    return chapter_rows, exercise_rows


def _replace(page: str, header: str, rows: list[str]) -> str:
    start = page.index(header)
    body_start = page.index("\n", page.index("\n", start) + 1) + 1  # after the header and the rule
    end = page.find("\n\n", body_start)
    end = len(page) if end < 0 else end
    return page[:body_start] + "\n".join(rows) + page[end:]


CHAPTER_HEADER = "| Chapter | Reading | Exercises | Class meetings |"
EXERCISE_HEADER = "| Chapter | Exercise | Kind | Difficulty | Time | Suggested use |"


def updated(page: str) -> str:
    chapter_rows, exercise_rows = tables()
    return _replace(_replace(page, CHAPTER_HEADER, chapter_rows), EXERCISE_HEADER, exercise_rows)


def main(argv: list[str]) -> int:
    page = PAGE.read_text()
    new = updated(page)
    if "--check" in argv:
        if new != page:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python tools/instructor_tables.py")
            return 1
        return 0
    PAGE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

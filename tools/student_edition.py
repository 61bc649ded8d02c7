"""Build the student edition: the same book with no solution anywhere (``make student``).

The configuration is derived from ``_config.yml`` at build time, so the repository URL still
lives in one place. The differences from the public edition:

* sphinx-exercise's ``hide_solutions``: every ``{solution}`` directive is left out of the
  pages, and so of the search index;
* the downloadable notebooks (``_sources/``) have their ``{solution}`` blocks removed too;
* the "For instructors" part of the table of contents is left out;
* the Colab button opens the solution-free notebook of the published student site,
  ``_sources/<page>.ipynb`` on branch ``--branch`` (default ``student``) of
  ``--repository-url`` (default: ``repository.url`` of ``_config.yml``), where the
  instructor publishes ``_build/student/html`` (the book's instructor page says how); the
  Binder button is left out, since that branch has no environment to build.

It reuses the public build's execution cache (``_build/.jupyter_cache``): after ``make
book`` no notebook is executed again. Usage, from the repository root::

    python tools/student_edition.py [--public-build _build] [--output _build/student]
"""

from __future__ import annotations

import argparse
import copy
import json
import pathlib
import re
import shutil
import sys
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
INSTRUCTOR_CAPTION = "For instructors"

_OPEN = re.compile(r"^[ \t]*(?P<fence>:{3,}|`{3,})\{solution\}")


def solution_blocks(text: str) -> list[str]:
    """Every ``{solution}`` directive of a MyST text, from its opening to its closing fence.

    Colon (``:::{solution}``) and backtick fences are recognised; a block closes at the
    first line made only of at least as many of the same fence character.
    """
    lines = text.splitlines(keepends=True)
    blocks, i = [], 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        fence = match["fence"]
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        if j == len(lines):
            raise ValueError(f"unclosed {{solution}} block starting at line {i + 1}: {lines[i]!r}")
        blocks.append("".join(lines[i:j + 1]))
        i = j + 1
    return blocks


def strip_solutions(text: str) -> str:
    """``text`` without its ``{solution}`` blocks."""
    for block in solution_blocks(text):
        text = text.replace(block, "", 1)
    return text


def source_solutions(path: pathlib.Path) -> list[str]:
    """The ``{solution}`` blocks of a notebook's markdown cells, or of a MyST ``.md`` file."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return [b for c in cells if c["cell_type"] == "markdown"
                for b in solution_blocks(_source(c))]
    return solution_blocks(path.read_text())


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def strip_file(path: pathlib.Path) -> None:
    """Remove the ``{solution}`` blocks from a copied notebook or text source, in place."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text())
        cells = []
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown" and solution_blocks(_source(cell)):
                text = strip_solutions(_source(cell))
                if not text.strip():
                    continue
                cell["source"] = text.splitlines(keepends=True)
            cells.append(cell)
        nb["cells"] = cells
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    elif path.suffix in (".md", ".txt", ".rst"):
        path.write_text(strip_solutions(path.read_text()))


def student_config(config: dict, *, cache: pathlib.Path, repository_url: str | None,
                   branch: str) -> dict:
    """The student edition's Jupyter Book configuration, from the public ``_config.yml``."""
    cfg = copy.deepcopy(config)
    cfg["title"] = f"{cfg.get('title', '')} (student edition)".strip()
    cfg.setdefault("execute", {})["cache"] = str(cache)
    repo = cfg.setdefault("repository", {})
    if repository_url:
        repo["url"] = repository_url
    repo["branch"] = branch
    repo["path_to_book"] = "_sources"
    cfg.setdefault("launch_buttons", {})["binderhub_url"] = ""
    sphinx = cfg.setdefault("sphinx", {})
    sphinx.setdefault("config", {})["hide_solutions"] = True
    # Jupyter Book looks local extensions up relative to the configuration file, which the
    # student edition writes elsewhere: make them absolute.
    sphinx["local_extensions"] = {name: (ROOT / path).as_posix()
                                  for name, path in sphinx.get("local_extensions", {}).items()}
    return cfg


def student_toc(toc: dict) -> dict:
    """The table of contents without the "For instructors" part."""
    toc = copy.deepcopy(toc)
    toc["parts"] = [p for p in toc.get("parts", []) if p.get("caption") != INSTRUCTOR_CAPTION]
    return toc


def build(*, public_build: pathlib.Path, output: pathlib.Path, repository_url: str | None,
          branch: str) -> int:
    """Build the student edition into ``output/html``; returns Sphinx's status (0: clean)."""
    from jupyter_book.sphinx import build_sphinx

    for old in ("html", ".doctrees", "jupyter_execute"):  # always a clean build, as -W needs
        shutil.rmtree(output / old, ignore_errors=True)
    output.mkdir(parents=True, exist_ok=True)
    cfg = student_config(yaml.safe_load((ROOT / "_config.yml").read_text()),
                         cache=(public_build / ".jupyter_cache").resolve(),
                         repository_url=repository_url, branch=branch)
    cfg_path, toc_path = output / "_config.yml", output / "_toc.yml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    toc_path.write_text(yaml.safe_dump(student_toc(yaml.safe_load((ROOT / "_toc.yml").read_text())),
                                       sort_keys=False))
    html = output / "html"
    status = build_sphinx(ROOT, html, noconfig=True, path_config=str(cfg_path),
                          confoverrides={"external_toc_path": toc_path.resolve().as_posix(),
                                         "latex_individualpages": False},
                          builder="html", warningiserror=True, keep_going=True)
    if isinstance(status, Exception):
        print(f"student edition: build failed: {status!r}", file=sys.stderr)
        return 1
    for folder in ("_sources", "_downloads"):
        for path in sorted((html / folder).rglob("*")):
            if path.is_file():
                strip_file(path)
    (html / ".nojekyll").touch()  # GitHub Pages: serve _static/, _sources/, _images/ as they are
    return int(status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--public-build", type=pathlib.Path, default=ROOT / "_build",
                        help="the public build's _build folder, whose execution cache is reused")
    parser.add_argument("--output", type=pathlib.Path, default=ROOT / "_build" / "student",
                        help="where to build (the site goes to OUTPUT/html)")
    parser.add_argument("--repository-url", default=None,
                        help="GitHub repository where the student site is published "
                             "(default: repository.url of _config.yml)")
    parser.add_argument("--branch", default="student",
                        help="branch of that repository holding the student site (default: student)")
    args = parser.parse_args(argv)
    t0 = time.time()
    status = build(public_build=args.public_build, output=args.output,
                   repository_url=args.repository_url, branch=args.branch)
    where = (args.output / "html" / "index.html").resolve()
    print(f"student edition {'built' if status == 0 else 'FAILED'} in {time.time() - t0:.0f} s:"
          f" file://{where}")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Per-chapter execution times of the last book build, read from its execution cache.

    python tools/chapter_times.py [--build _build] [--check]

``jupyter-book build`` (``execute_notebooks: cache``) executes every chapter through
jupyter-cache, which records each notebook's execution time (``execution_seconds``) in
``_build/.jupyter_cache``. This prints one line per chapter, the total, and flags the
issue's limits: no chapter over :data:`CHAPTER_LIMIT_S`, the whole book within
:data:`BOOK_LIMIT_S` on the 2-core CPU. ``--check`` exits with status 1 when a limit is
exceeded. The test suite prints the same table after its clean book build
(``tests/test_book.py`` and the terminal-summary hook in ``tests/conftest.py``).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHAPTER_LIMIT_S = 90.0
BOOK_LIMIT_S = 300.0


def chapter_times(build: pathlib.Path | str = ROOT / "_build") -> dict[str, float]:
    """``{notebook path relative to the book's root: seconds}`` of the latest execution of each
    notebook recorded in ``<build>/.jupyter_cache`` (empty if there is none); the root is the
    folder that holds ``<build>`` or, for a build elsewhere (``--path-output``), this repository."""
    cache_dir = pathlib.Path(build) / ".jupyter_cache"
    root = pathlib.Path(build).resolve().parent
    if not cache_dir.exists():
        return {}
    from jupyter_cache import get_cache

    latest: dict[str, tuple[object, float]] = {}
    for rec in get_cache(str(cache_dir)).list_cache_records():
        secs = (rec.data or {}).get("execution_seconds")
        if secs is None:
            continue
        path = pathlib.Path(rec.uri).resolve()
        name = path.name
        for base in (root, ROOT):  # the build's parent (make book), else this repository
            if path.is_relative_to(base):
                name = str(path.relative_to(base))
                break
        if name not in latest or rec.created > latest[name][0]:
            latest[name] = (rec.created, float(secs))
    return {name: secs for name, (_, secs) in sorted(latest.items())}


def table(times: dict[str, float]) -> list[str]:
    """Printable lines: one per chapter (with a flag above the chapter limit) and the total."""
    if not times:
        return ["no executed chapters recorded (build the book first: make book)"]
    width = max(len(n) for n in times)
    lines = [f"{name:<{width}}  {secs:6.1f} s" + ("  OVER the 90 s limit" if secs > CHAPTER_LIMIT_S else "")
             for name, secs in times.items()]
    total = sum(times.values())
    lines.append(f"{'all chapters':<{width}}  {total:6.1f} s" + (
        "  OVER the 5 min limit" if total > BOOK_LIMIT_S else ""))
    return lines


def within_limits(times: dict[str, float]) -> bool:
    return all(s <= CHAPTER_LIMIT_S for s in times.values()) and sum(times.values()) <= BOOK_LIMIT_S


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", type=pathlib.Path, default=ROOT / "_build")
    ap.add_argument("--check", action="store_true", help="exit 1 if a chapter or the book is over its limit")
    args = ap.parse_args(argv)
    times = chapter_times(args.build)
    print("\n".join(table(times)))
    return 1 if args.check and not within_limits(times) else 0


if __name__ == "__main__":
    sys.exit(main())

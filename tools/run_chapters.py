"""Execute every chapter notebook as a reader's kernel would, with no cache, and time each one.

    python tools/run_chapters.py [--requirements tests/requirements-colab.txt] [--timeout 300] [--jobs 2]
                                 [book/ch1_linear_picture.ipynb ...]

``make test`` runs it with the Python of ``.venv-colab`` (Colab's versions): each chapter
(default: every notebook of ``_toc.yml``, in its order) is executed by nbclient in a fresh kernel of
*this* interpreter, with the working directory ``book/`` (so ``import mini_adv`` finds the
installed package, as in Colab, not the repository's folder), ``MINI_ADV_STATIC=1``, and at
most ``--timeout`` seconds per cell. The first cell that raises stops the run: its chapter,
cell number, source and traceback are printed and the exit status is 1. Nothing is written to
the notebooks or to the user's home: the kernels get a temporary ``HOME``, Jupyter and IPython
folders, and ``MINI_ADV_JAX_CACHE`` pointing at a temporary (empty) compilation cache.

It first checks that the installed ``mini_adv`` has every module of the repository's
``mini_adv/`` (exit status 2 otherwise: a subpackage missing from ``pyproject.toml`` breaks a
Colab install, not an editable one). ``--requirements FILE`` also checks that every ``name==version`` pin of FILE is what this
interpreter has installed (exit status 2 otherwise), so that a ``pip install`` that replaced
Colab's jax cannot pass unnoticed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import re
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
KERNEL_NAME = "mini-adv-run-chapters"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def chapters() -> list[pathlib.Path]:
    """Every notebook of the book's table of contents (``_toc.yml``), in its order: the
    chapters and the closing chapter. Read with a regular expression (``- file: book/name``),
    so that the Colab environment needs no YAML parser."""
    toc = (BOOK.parent / "_toc.yml").read_text()
    names = re.findall(r"^\s*-?\s*file:\s*(\S+)\s*$", toc, flags=re.M)
    found = [BOOK.parent / f"{name}.ipynb" for name in names]
    return [path for path in found if path.exists()]


def pins(requirements: pathlib.Path) -> dict[str, str]:
    """``{name: version}`` of the exact pins (``name==version``) of a requirements file."""
    found = {}
    for line in requirements.read_text().splitlines():
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)", line)
        if m:
            found[m[1]] = m[2]
    return found


def version_mismatches(wanted: dict[str, str]) -> list[str]:
    """One line per pinned package whose installed version differs (or that is missing)."""
    from importlib import metadata

    wrong = []
    for name, version in wanted.items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have != version:
            wrong.append(f"{name}: pinned {version}, installed {have or 'nothing'}")
    return wrong


def sandbox_env(tmp: pathlib.Path) -> dict[str, str]:
    """Environment variables that keep a kernel's files in ``tmp``, none in the user's home."""
    env = {"HOME": tmp / "home", "MINI_ADV_JAX_CACHE": tmp / "jax-cache", "IPYTHONDIR": tmp / "ipython",
           "JUPYTER_CONFIG_DIR": tmp / "jupyter-config", "JUPYTER_DATA_DIR": tmp / "jupyter-data",
           "JUPYTER_RUNTIME_DIR": tmp / "jupyter-runtime", "MPLCONFIGDIR": tmp / "matplotlib",
           "XDG_CACHE_HOME": tmp / "cache"}
    for path in env.values():
        path.mkdir(parents=True, exist_ok=True)
    return {"MINI_ADV_STATIC": "1", "PYTHONNOUSERSITE": "1"} | {k: str(v) for k, v in env.items()}


def install_kernelspec(data_dir: pathlib.Path) -> str:
    """A kernelspec that runs this interpreter (not whatever ``python3`` Jupyter finds)."""
    spec = data_dir / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python {sys.version.split()[0]} ({sys.prefix})", "language": "python"}))
    return KERNEL_NAME


def missing_from_install() -> tuple[str, list[str]]:
    """Where ``import mini_adv`` finds the package (outside this folder, as in Colab), and the
    modules of this repository's ``mini_adv/`` that the installed copy lacks (a subpackage that
    ``pyproject.toml`` does not list, say). Empty when the install is editable."""
    import importlib.util

    spec = importlib.util.find_spec("mini_adv")
    if spec is None or spec.origin is None:
        return "nowhere", ["mini_adv (not installed)"]
    installed = pathlib.Path(spec.origin).resolve().parent
    source = ROOT / "mini_adv"
    if installed == source.resolve():
        return str(installed), []
    missing = [str(f.relative_to(source)) for f in sorted(source.rglob("*.py"))
               if "__pycache__" not in f.parts and not (installed / f.relative_to(source)).exists()]
    return str(installed), missing


class ChapterError(RuntimeError):
    """A cell of a chapter raised: the message has the cell's number, source and traceback."""


def run_chapter(path: pathlib.Path, kernel_name: str, timeout: float) -> float:
    """Execute one notebook in memory (its file is not changed); return the wall time in seconds.

    Raises:
        ChapterError: a cell raised, or ran longer than ``timeout`` seconds.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=False,
                            resources={"metadata": {"path": str(BOOK)}})
    t0 = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as err:
        seconds = time.perf_counter() - t0
        index = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and any(
            o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        where = f"cell {index}" if index is not None else "a cell"
        raise ChapterError(f"{path.name}: {where} failed after {seconds:.0f} s\n"
                           f"{_ANSI.sub('', str(err))}") from None
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebooks", nargs="*", type=pathlib.Path, help="default: every notebook of _toc.yml")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds per cell (default 300; a chapter should take 90 s in all)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="notebooks executed at a time, each in its own kernel (default 1; XLA "
                         "compiles on one core, so 2 keep a 2-core machine busy)")
    ap.add_argument("--requirements", type=pathlib.Path,
                    help="check first that this interpreter has the exact pins of this file")
    args = ap.parse_args(argv)

    print(f"Python {sys.version.split()[0]} ({sys.executable})")
    if args.requirements:
        wanted = pins(args.requirements)
        wrong = version_mismatches(wanted)
        if wrong:
            print(f"not the versions of {args.requirements}:\n  " + "\n  ".join(wrong), file=sys.stderr)
            return 2
        print("versions as pinned in " + str(args.requirements) + ": "
              + ", ".join(f"{n} {v}" for n, v in wanted.items()))
    where, missing = missing_from_install()
    print(f"mini_adv imported from {where}")
    if missing:
        print("the installed mini_adv lacks modules of mini_adv/ (is each subpackage in pyproject.toml's "
              "[tool.setuptools] packages?): " + ", ".join(missing), file=sys.stderr)
        return 2
    notebooks = [p.resolve() for p in args.notebooks] or chapters()
    if not notebooks:
        print(f"no chapter notebook in {BOOK}", file=sys.stderr)
        return 1
    if os.environ.pop("PYTHONPATH", None):
        print("PYTHONPATH is not passed to the kernels (Colab has none)")

    with tempfile.TemporaryDirectory(prefix="mini-adv-chapters-") as tmp:
        os.environ.update(sandbox_env(pathlib.Path(tmp)))
        kernel = install_kernelspec(pathlib.Path(os.environ["JUPYTER_DATA_DIR"]))
        times = {}
        with concurrent.futures.ProcessPoolExecutor(max(1, args.jobs)) as pool:
            runs = {pool.submit(run_chapter, path, kernel, args.timeout): path for path in notebooks}
            for run in concurrent.futures.as_completed(runs):
                path = runs[run]
                try:
                    times[path.name] = run.result()
                except ChapterError as err:
                    print(f"FAILED {err}", file=sys.stderr)
                    for other in runs:
                        other.cancel()
                    return 1
                print(f"{path.name:<36} {times[path.name]:6.1f} s", flush=True)
    print(f"{'all ' + str(len(times)) + ' chapters':<36} {sum(times.values()):6.1f} s"
          + (f" ({args.jobs} at a time: each chapter's time includes the others' load)"
             if args.jobs > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

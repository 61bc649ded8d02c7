"""The book builds from a clean cache with warnings as errors, executing every chapter."""

import json
import os
import pathlib
import re
import subprocess
import sys
import time

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import sync_colab  # noqa: E402


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


@pytest.mark.book
def test_book_builds_clean_with_warnings_as_errors():
    jb = pathlib.Path(sys.executable).with_name("jupyter-book")
    subprocess.run([str(jb), "clean", "--all", str(ROOT)], check=True, capture_output=True)
    t0 = time.time()
    proc = subprocess.run([str(jb), "build", str(ROOT), "-W", "--keep-going"],
                          capture_output=True, text=True, env={**os.environ, "MINI_ADV_STATIC": "1"})
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    print(f"\nbook built in {time.time() - t0:.0f} s")
    for line in log.splitlines():
        if re.search(r"Executing|Executed|executed", line):
            print(line.strip())
    html = ROOT / "_build" / "html"
    for chapter in chapters():
        page = (html / f"{chapter}.html").read_text()
        assert "Traceback" not in page, f"{chapter} shows a traceback"
        assert page.count("cell_output") > 3, f"{chapter} has no executed outputs"
    assert (html / "index.html").exists()

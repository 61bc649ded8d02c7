"""Write (or check) the Colab install cell of every chapter notebook from _config.yml.

The repository URL lives in one place, ``repository.url`` (and ``branch``) in _config.yml.
Each chapter's first code cell installs the companion package from that repository when
(and only when) it runs in Colab. A fork changes _config.yml and runs ``make colab-cells``;
``python tools/sync_colab.py --check`` (run by the tests) fails if a notebook is out of date,
stored with outputs, or lacks the install cell.
"""

from __future__ import annotations

import json
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent

TEMPLATE = """\
# Colab only: install mini_adv (never jax: Colab's own jax stays).
import sys
if "google.colab" in sys.modules:
    %pip install -q "mini_adv @ git+{url}@{branch}\""""


def install_cell_source() -> str:
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = cfg["repository"]
    return TEMPLATE.format(url=repo["url"].rstrip("/"), branch=repo.get("branch", "main"))


def notebooks() -> list[pathlib.Path]:
    return sorted((ROOT / "book").glob("*.ipynb"))


def problems(path: pathlib.Path, source: str) -> list[str]:
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    out = []
    if not code or "".join(code[0]["source"]) != source:
        out.append("first code cell is not the Colab install cell of _config.yml (run `make colab-cells`)")
    if any(c.get("outputs") or c.get("execution_count") for c in code):
        out.append("stored with outputs (clear them before committing)")
    return out


def main(argv: list[str]) -> int:
    source = install_cell_source()
    if "--check" in argv:
        bad = {p.name: problems(p, source) for p in notebooks()}
        bad = {k: v for k, v in bad.items() if v}
        for name, msgs in bad.items():
            for m in msgs:
                print(f"{name}: {m}")
        return 1 if bad else 0
    for path in notebooks():
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        if code and "google.colab" in "".join(code[0]["source"]):
            code[0]["source"] = source.splitlines(keepends=True)
        else:
            nb["cells"].insert(0, {"cell_type": "code", "execution_count": None,
                                   "metadata": {"tags": ["hide-cell"]}, "outputs": [],
                                   "source": source.splitlines(keepends=True)})
        for c in nb["cells"]:
            if c["cell_type"] == "code":
                c["outputs"], c["execution_count"] = [], None
        nb["metadata"].pop("jupytext", None)
        nb["metadata"].setdefault("language_info", {"name": "python"})
        nb["metadata"]["colab"] = {"provenance": []}
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

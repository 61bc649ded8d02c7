"""Print the path of a Python interpreter of Colab's version (3.12), for ``make test``'s
Colab environment (``.venv-colab``).

    python3 tools/colab_python.py [3.12]

Looks, in this order, at ``pyenv prefix 3.12``, ``python3.12`` on ``PATH`` (a pyenv shim that
is not active fails its check and is skipped) and ``~/.pyenv/versions/3.12*`` (also under
``/root``), and prints the first interpreter that runs, reports that version and has ``venv``.
If there is none it prints the interpreter running this script, and says on stderr that the
Colab environment will use that version instead. Exit status 0 either way: a machine without
3.12 still runs the tests, with the notice in its log.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys


def candidates(version: str) -> list[str]:
    """Interpreters that may be Python ``version``, most specific first (they may not run)."""
    found = []
    try:
        prefix = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True,
                                timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        prefix = ""
    for line in prefix.splitlines():  # several versions print one prefix per line
        found.append(os.path.join(line.strip(), "bin", f"python{version}"))
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(on_path)
    for home in dict.fromkeys([os.path.expanduser("~"), "/root"]):
        found += sorted(glob.glob(os.path.join(home, ".pyenv", "versions", f"{version}*", "bin",
                                               f"python{version}")), reverse=True)
    return list(dict.fromkeys(found))


def works(python: str, version: str) -> bool:
    """Whether ``python`` runs, is version ``version`` (``"3.12"``) and can create a venv."""
    check = (f"import sys, venv, ensurepip; "
             f"sys.exit(0 if '%d.%d' % sys.version_info[:2] == {version!r} else 1)")
    try:
        return subprocess.run([python, "-c", check], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def find(version: str = "3.12") -> str | None:
    """The first working Python ``version`` of :func:`candidates`, or ``None``."""
    return next((p for p in candidates(version) if works(p, version)), None)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    version = args[0] if args else "3.12"
    python = find(version)
    if python is None:
        python = sys.executable
        print(f"NOTICE: no Python {version} found (pyenv, python{version} on PATH, ~/.pyenv/versions): "
              f"the Colab environment uses Python {sys.version.split()[0]} ({python}) instead",
              file=sys.stderr)
    print(python)
    return 0


if __name__ == "__main__":
    sys.exit(main())

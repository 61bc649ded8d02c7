"""The book's figures, apart from the science: one module per chapter.

* :mod:`mini_adv.figures.style` — the book's style (:func:`~mini_adv.figures.style.book_style`),
  its palette, log-log axes and kernel-free interactive sliders.
* :mod:`mini_adv.figures.ch1` … :mod:`mini_adv.figures.ch6` — each chapter's figures and
  tables; they take the results of the science modules (:mod:`mini_adv.rays`, ...) and draw.
* :mod:`mini_adv.figures.regimes` — the closing chapter's regime map.

This is the only part of :mod:`mini_adv` that imports matplotlib; its submodules load on first
use (``from mini_adv.figures import ch1`` or ``mini_adv.figures.ch1``).
"""

import importlib
from typing import Any

_SUBMODULES = ("style", "ch1", "ch2", "ch3", "ch4", "ch5", "ch6", "regimes")

__all__ = list(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_SUBMODULES))

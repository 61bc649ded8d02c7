"""The book's figure style, and interactive figures that also work without a kernel.

* :func:`book_style` — a context manager under which figures get the book's style: one
  palette, an opaque white background (readable on the book's dark theme), larger fonts,
  light grids; matplotlib's previous settings come back on exit.
* :func:`use_book_style` — the same settings applied globally, for a notebook's setup cell
  (it changes ``matplotlib.rcParams`` for the rest of the session; never called on import).
* :func:`slider` — a figure with a slider over precomputed parameter values. Live in a
  notebook (Colab, Jupyter) it is an ipywidgets slider; in the static web book
  (``MINI_ADV_STATIC=1``) it is a kernel-free JavaScript player of the same frames
  (``matplotlib.animation.FuncAnimation.to_jshtml``), so moving it changes the picture.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, Callable, Iterator, Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt

from mini_adv.runtime import static_mode

PALETTE: dict[str, str] = {
    "gradient": "#d55e00",   # the gradient direction / adversarial (vermillion)
    "random": "#0072b2",     # random directions (blue)
    "theory": "#222222",     # predictions (dashed)
    "accent": "#009e73",     # a third series (bluish green)
    "muted": "#7f7f7f",
    "positive": "#fdd9b5",   # f > 0 region
    "negative": "#c6dbef",   # f < 0 region
}
"""Named colours used consistently across chapters (theory is always dark and dashed). The
series colours are Okabe & Ito's colour-blind-safe palette (vermillion, blue, bluish green: no
red next to green)."""

CYCLE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#882255"]
"""The colour cycle: Okabe & Ito's palette (without its yellow, unreadable on white) and Tol's
wine as a seventh colour, so that seven series (chapter 4's activations) get seven colours."""

DPI = 150
"""Resolution of every figure and slider frame (pixels per inch): sharp on HiDPI screens at
the page's column width."""


def power_law_axes(ax: Any, xs: Sequence[float], fit: Any = None, *,
                   fit_label: str = "", y_ticks: Sequence[float] = ()) -> None:
    """Log-log axes labelled at the measured x values, optionally with a fitted power law.

    Draws y = C·x^slope (``fit``: a record with attributes ``C`` and ``slope``, as the
    chapters' scaling fits return, or a mapping with those keys) as a thin line over the
    measured range padded by 1.3× on each side, sets
    both axes to log scale, puts x ticks at ``xs`` only, hides minor tick labels and labels
    the y axis at those of ``y_ticks`` that fall inside the current limits.
    """
    import numpy as np
    from matplotlib.ticker import NullFormatter

    xs = np.asarray(xs, float)
    if fit is not None:
        grid = np.geomspace(xs.min() / 1.3, xs.max() * 1.3, 50)
        C, slope = ((fit["C"], fit["slope"]) if isinstance(fit, Mapping)
                    else (fit.C, fit.slope))
        ax.plot(grid, C * grid ** slope, "-", color=PALETTE["gradient"], lw=1, label=fit_label)
    ax.set(xscale="log", yscale="log")
    ax.set_xticks(xs, [f"{v:g}" for v in xs])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    if len(y_ticks):
        ticks = np.asarray(y_ticks, float)
        lo, hi = ax.get_ylim()
        keep = ticks[(ticks >= lo) & (ticks <= hi)]
        ax.set_yticks(keep, [f"{t:g}" for t in keep])


BOOK_RC: dict[str, Any] = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.figsize": (7.0, 4.2),
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "legend.framealpha": 0.95,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": mpl.cycler(color=CYCLE),
    "animation.embed_limit": 40.0,  # MB, for kernel-free sliders
}
"""matplotlib settings of the book's figures (see :func:`book_style`)."""


@contextlib.contextmanager
def book_style() -> Iterator[None]:
    """Inside ``with book_style():`` figures use the book's style; on exit matplotlib's
    previous settings are restored (``matplotlib.rc_context``)."""
    with mpl.rc_context(BOOK_RC):
        yield


def use_book_style() -> None:
    """Apply the book's style globally (``matplotlib.rcParams``) for the rest of the session,
    and, in a notebook, show figures as 256-colour PNGs (:func:`palette_png`).

    For a chapter's setup cell; tests and library code use the scoped :func:`book_style`.
    """
    mpl.rcParams.update(BOOK_RC)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of ipywidgets
        return
    shell = get_ipython()
    if shell is not None:
        from matplotlib.figure import Figure

        try:  # the inline backend registers its own PNG formatter when it loads: load it first
            import matplotlib_inline.backend_inline  # noqa: F401
        except ImportError:  # pragma: no cover - a shell without the inline backend
            pass
        shell.display_formatter.formatters["image/png"].for_type(Figure, palette_png)


def palette_png(fig: Any) -> bytes | None:
    """A figure as the notebook shows it (tight bounding box, at the figure's dpi), re-encoded
    as a 256-colour palette PNG: the same picture at about a third of the bytes. ``None`` for
    an empty figure (nothing is shown), as matplotlib's inline backend does."""
    import io

    if not fig.axes and not fig.lines:
        return None
    raw = io.BytesIO()
    fig.canvas.print_figure(raw, format="png", bbox_inches="tight", dpi=fig.dpi,
                            facecolor=fig.get_facecolor(), edgecolor=fig.get_edgecolor())
    return _palette(raw.getvalue(), fig.dpi)


def _palette(png: bytes, dpi: float) -> bytes:
    """``png`` re-encoded as a 256-colour palette PNG (Pillow's median-cut quantiser, then
    ``optimize``), with ``dpi`` written into it."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
        out, format="PNG", optimize=True, dpi=(dpi, dpi))
    return out.getvalue()


def slider(draw: Callable[[plt.Figure, Any], None], values: Sequence[Any], *, label: str,
           figsize: tuple[float, float] = (10.0, 4.5), live: bool | None = None) -> Any:
    """An interactive figure: ``draw(fig, value)`` redrawn as a slider moves over ``values``.

    Args:
        draw: clears nothing itself; it receives an empty figure and a value and draws.
        values: the precomputed slider positions (each becomes one frame in static mode).
        label: the slider's name, shown beside it (live) and in the frame title (static).
        figsize: figure size in inches.
        live: force ipywidgets (True) or the kernel-free player (False); default: live
            unless :func:`mini_adv.runtime.static_mode`.

    Returns:
        The ipywidgets object (live) or an ``IPython.display.HTML`` player (static), ready to
        be the value of a notebook cell.

    Raises:
        ValueError: if ``values`` is empty.
    """
    values = list(values)
    if not values:
        raise ValueError("slider needs at least one value")
    if live is None:
        live = not static_mode()
    if live:
        import ipywidgets as widgets

        out = widgets.Output()
        control = widgets.SelectionSlider(options=values, value=values[0], description=label,
                                          continuous_update=False)

        def redraw(change: Any = None) -> None:
            with out:
                out.clear_output(wait=True)
                fig = plt.figure(figsize=figsize)
                draw(fig, control.value)
                plt.show()

        control.observe(redraw, names="value")
        redraw()
        return widgets.VBox([control, out])

    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    fig = plt.figure(figsize=figsize)

    def frame(i: int) -> list:
        fig.clear()
        draw(fig, values[i])
        return []

    anim = FuncAnimation(fig, frame, frames=len(values), interval=1200, blit=False)
    html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    return HTML(compress_frames(html, dpi=fig.dpi))


_FRAME = re.compile(r'"data:image/png;base64,((?:[A-Za-z0-9+/=]|\\\n)+)"')


def compress_frames(html: str, *, dpi: float = DPI) -> str:
    """The kernel-free player ``html`` with every embedded PNG frame re-encoded as a
    256-colour palette PNG (Pillow's median-cut quantiser, then ``optimize``): line plots use a
    handful of colours plus antialiasing shades, so the frames look the same and weigh about a
    third. The PNGs keep their resolution (``dpi`` is written into each frame)."""
    import base64

    def recode(match: re.Match) -> str:
        raw = base64.b64decode(match[1].replace("\\\n", ""))
        return '"data:image/png;base64,' + base64.b64encode(_palette(raw, dpi)).decode() + '"'

    return _FRAME.sub(recode, html)

"""Chapter 6's figures: digits, their minimal perturbations, and what training does to them.

:func:`draw_perturbations` is the picture readers expect first: images x, their perturbations
δ (magnified, on their own colour scale) and the perturbed images x + δ (on the colour scale of
x). The other functions draw the chapter's measurements; each takes plain arrays or the records
of :mod:`mini_adv.realdata` and draws on a given figure or axes.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from mini_adv.figures.style import PALETTE

IMAGE_CMAP = "PuOr_r"
"""A diverging colour map: the images are centred (the mean training image is subtracted), so
a pixel is darker or lighter than average; white is the average grey level."""


def _side(d: int) -> int:
    side = math.isqrt(d)
    if side * side != d:
        raise ValueError(f"the images must be square: d = {d} is not a square number")
    return side


def magnification(Delta: Any, target: float) -> float:
    """The factor k that brings the largest |δ| pixel up to ``target``, rounded down to 1, 2
    or 5 times a power of ten (so the label "δ × k" reads easily); 1 if δ is already as large."""
    small = float(np.abs(np.asarray(Delta, float)).max())
    if small == 0 or target <= small:
        return 1.0
    e = 10.0 ** math.floor(math.log10(target / small))
    return float(max(m * e for m in (1, 2, 5) if m * e <= target / small))


def draw_perturbations(fig: Any, X: Any, Delta: Any, *, pixels: Any = None, scale: Any = None,
                       labels: Sequence[str] | None = None, title: str = "") -> float:
    """Three rows of images: x, δ × k and x + δ, one column per example.

    With ``pixels`` and ``scale`` (from :func:`mini_adv.data.digit_pixels`) the images are
    shown as grey levels: p, c·δ × k and p + c·δ (a digit's ink dark on white); otherwise the
    centred rows x themselves on a diverging map. x and x + δ share one colour scale, so the
    perturbed image is shown exactly as the network sees it; δ is magnified by k
    (:func:`magnification`) and drawn on a symmetric scale of the same size, labelled "δ × k".
    Under each column: ‖δ‖/‖x‖ (in the book's units, where ‖x‖ = √d) and, if given,
    ``labels[i]`` (e.g. the network's decision before → after).

    Args:
        fig: an empty matplotlib figure.
        X: ``(n, d)`` inputs in the book's units, d a square number (digits: d = 64).
        Delta: ``(n, d)`` perturbations in the same units.
        pixels: optional ``(n, d)`` grey levels of the same images.
        scale: ``(n,)`` factors c_i with p_i = p̄ + c_i x_i (needed with ``pixels``).
        labels: optional ``n`` strings written under the columns.
        title: the figure's title.

    Returns:
        The magnification k.

    Raises:
        ValueError: for mismatched shapes, a non-square d, or ``pixels`` without ``scale``.
    """
    X, Delta = np.asarray(X, float), np.asarray(Delta, float)
    if X.ndim != 2 or X.shape != Delta.shape:
        raise ValueError(f"X and Delta must have the same shape (n, d); got {X.shape} and {Delta.shape}")
    n, d = X.shape
    side = _side(d)
    ratio = np.linalg.norm(Delta, axis=1) / np.linalg.norm(X, axis=1)
    if pixels is None:
        base, shown = X, Delta
        lo, hi, cmap = -np.abs(X).max(), np.abs(X).max(), IMAGE_CMAP
    else:
        if scale is None:
            raise ValueError("pixels needs scale: pass both from data.digit_pixels")
        base = np.asarray(pixels, float)
        shown = Delta * np.asarray(scale, float).reshape(-1, 1)
        if base.shape != X.shape:
            raise ValueError(f"pixels must have the shape of X {X.shape}; got {base.shape}")
        both = np.concatenate([base, base + shown])
        lo, hi, cmap = min(both.min(), 0.0), both.max(), "gray_r"
    half = (hi - lo) / 2
    k = magnification(shown, half)
    axes = fig.subplots(3, n, squeeze=False)
    rows = [("x", base, lo, hi, cmap), (f"δ × {k:g}", k * shown, -half, half, IMAGE_CMAP),
            ("x + δ", base + shown, lo, hi, cmap)]
    for r, (name, A, vmin, vmax, cm) in enumerate(rows):
        for i in range(n):
            ax = axes[r, i]
            im = ax.imshow(A[i].reshape(side, side), cmap=cm, vmin=vmin, vmax=vmax,
                           interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(name, fontsize="large")
        bar = fig.colorbar(im, ax=axes[r].tolist(), shrink=0.9, pad=0.02)
        bar.set_label("grey level" if pixels is not None and r != 1 else
                      ("change × k" if r == 1 else "centred value"), fontsize="small")
    for i in range(n):
        text = f"‖δ‖/‖x‖ = {ratio[i]:.2f}"
        if labels is not None:
            text += f"\n{labels[i]}"
        axes[2, i].set_xlabel(text)
    if title:
        fig.suptitle(title)
    return k


def plot_subspace(ax: Any, Ds: Sequence[int], off_share: Sequence[float],
                  distance: Sequence[float], *, d: int = 64) -> None:
    """The minimal perturbation of digits embedded in ℝ^D: its share off the data subspace
    ‖δ_⊥‖/‖δ‖ (left axis) and its size ‖δ‖/‖x‖ (right axis) against D, log scale in D.

    The dashed line is √(1 − d/D), the share off the subspace of a perturbation in a uniformly
    random direction of ℝ^D: the share of a direction that ignores the data.
    """
    Ds = np.asarray(Ds, float)
    grid = np.geomspace(Ds.min(), Ds.max(), 60)
    ax.plot(Ds, off_share, "o-", color=PALETTE["gradient"], label=r"$\|\delta_\perp\|/\|\delta\|$ (measured)")
    ax.plot(grid, np.sqrt(np.clip(1 - d / grid, 0, None)), "--", color=PALETTE["theory"],
            label=r"$\sqrt{1 - d/D}$ (a random direction)")
    ax.set(xscale="log", xlabel="ambient dimension $D$ (data on a 64-dimensional subspace)",
           ylabel="share of $\\delta$ off the data subspace", ylim=(0, 1.05))
    ax.set_xticks(Ds, [f"{int(v)}" for v in Ds])
    ax.xaxis.set_minor_formatter(_null())
    right = ax.twinx()
    right.plot(Ds, distance, "s:", color=PALETTE["random"], label=r"$\|\delta\|/\|x\|$ (right axis)")
    right.set_ylabel(r"minimal distance $\|\delta\|/\|x\|$", color=PALETTE["random"])
    right.set_ylim(0, 1.05 * max(distance))
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="center right")


def _null() -> Any:
    from matplotlib.ticker import NullFormatter

    return NullFormatter()


def plot_defence(ax: Any, radii: Sequence[float], median_distance: Sequence[float],
                 test_accuracy: Sequence[float]) -> None:
    """Adversarial training at radius ε: the median minimal distance on test digits (left
    axis, against the line ‖δ‖ = ε, dashed: the distance the training radius asks for) and
    the test accuracy (right axis)."""
    radii = np.asarray(radii, float)
    ax.plot(radii, median_distance, "o-", color=PALETTE["gradient"],
            label="median minimal distance (test digits)")
    ax.plot(radii, radii, "--", color=PALETTE["theory"], label=r"$\|\delta\| = \varepsilon$")
    ax.set(xlabel=r"training radius $\varepsilon$ (units of $\|x\|/\sqrt{d} = 1$)",
           ylabel=r"minimal $\ell_2$ distance $\|\delta\|$")
    right = ax.twinx()
    right.plot(radii, test_accuracy, "s:", color=PALETTE["random"], label="test accuracy (right axis)")
    right.set_ylabel("test accuracy", color=PALETTE["random"])
    right.set_ylim(0.5, 1.01)
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right")



"""The closing chapter's figure: the regimes of the results and the book's experiments on them.

* :func:`plot_regimes` — two panels. (a) Random networks: the smallest width ratio
  min_ℓ h_ℓ/h_{ℓ−1} (h_0 = d) against d, with the regions of the results; (b) trained
  networks: the number n of training points (k of clusters) against d, with the book's
  estimate n = √(d/ln n) of Vardi et al.'s regime and the condition n·μ(X) ≤ 1/3 (which
  concerns nearly orthogonal points and clusters only); chapter 6's real digits are labelled,
  and its digits on a subspace of ℝ^D sit at d = D. Every experiment of
  :func:`mini_adv.regimes.experiments` is one scatter artist (its points over its d values and
  variants), marker by chapter, filled where a theorem covers it and hollow where none does.

It takes the records of :mod:`mini_adv.regimes` and draws on a figure the caller creates.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from mini_adv.figures.style import CYCLE, PALETTE
from mini_adv.regimes import COHERENCE_LIMIT, Experiment, covering, experiments, typical_coherence

MARKERS = {"ch1": "o", "ch2": "s", "ch3": "^", "ch4": "D", "ch5": "v", "ch6": "P"}
"""The marker of each chapter's experiments."""

_THEOREMS = {"daniely-shacham", "bubeck", "bartlett", "montanari-wu", "vardi", "frei", "melamed"}


def min_ratio(widths: Sequence[int]) -> float:
    """min_ℓ h_ℓ/h_{ℓ−1} over the layers of ``[d, h_1, …, h_L]`` (h_0 = d)."""
    return min(b / a for a, b in zip(widths[:-1], widths[1:]))


def vardi_estimate(d: np.ndarray) -> np.ndarray:
    """The n solving n = √(d/ln n) for each d (fixed-point iteration; n ≥ 2)."""
    d = np.asarray(d, float)
    n = np.sqrt(d)
    for _ in range(100):
        n = np.sqrt(d / np.log(np.maximum(n, 2.0)))
    return n


def coherence_boundary(ns: Sequence[int]) -> np.ndarray:
    """The d at which n·μ(X) = 1/3 for the typical coherence of n uniform points."""
    return np.array([(n * typical_coherence(n, 1) / COHERENCE_LIMIT) ** 2 for n in ns])


def _points(e: Experiment, preset: str) -> tuple[np.ndarray, np.ndarray]:
    dims, variants, ns = e.preset(preset)
    if e.weights == "trained":
        pts = [(d, n) for d in dims for n in ns]
    else:
        pts = [(d, min_ratio(e.widths(d, v))) for d in dims for v in variants]
    xy = np.array(sorted(set(pts)), float)
    return xy[:, 0], xy[:, 1]


_NOTES = {
    "digits": ("real digits: far from nearly\northogonal, covered by no result", 0, (0.57, 0.62)),
    "subspace": ("digits on a subspace of $\\mathbb{R}^D$, at $d = D$: Melamed et al.\n"
                 "(no condition on $n$ known to us)", 1, (0.5, 1.9)),
}
"""Panel (b)'s labels of chapter 6's data: text, which point (the index of its d among the d
values of the first experiment with those data, smallest first), and the text's offset from it
(factors on x and y)."""


def _label_data(ax: Any, drawn: Sequence[tuple[Experiment, np.ndarray, np.ndarray]]) -> None:
    """Name the real digits and the subspace data on panel (b), at their first experiment."""
    for data, (text, pick, (fx, fy)) in _NOTES.items():
        found = next(((x, y) for e, x, y in drawn if e.weights == "trained" and e.data == data), None)
        if found is None:
            continue
        x, y = found
        dims = np.unique(x)
        i = int(np.flatnonzero(x == dims[min(pick, len(dims) - 1)])[0])
        ax.annotate(text, xy=(x[i], y[i]), xytext=(x[i] * fx, y[i] * fy), fontsize=7.5,
                    arrowprops=dict(arrowstyle="-", color=PALETTE["muted"], lw=0.8),
                    va="center").set_gid(f"data:{data}")


def plot_regimes(fig: Any, exps: Sequence[Experiment] | None = None, *,
                 preset: str = "cpu") -> tuple[Any, Any]:
    """Draw the regime map on ``fig`` and return its two axes (random, trained).

    An experiment with a point on top of an earlier experiment's is drawn 12 % higher (again
    if needed; a visual offset only), so that no marker hides another.

    Args:
        fig: an empty matplotlib figure.
        exps: the experiments to place (default :func:`mini_adv.regimes.experiments`).
        preset: ``"cpu"`` or ``"gpu"``: whose d values (and variants, n values) to draw.

    Returns:
        ``(ax_random, ax_trained)``. Each experiment is one scatter artist whose ``gid`` is
        ``"experiment:<chapter>:<name>"``; a point is filled where :func:`covering` names a
        theorem (not only the linear heuristic), hollow where no theorem covers it. Panel (b)
        names chapter 6's real digits and subspace data with annotations whose ``gid`` is
        ``"data:digits"`` and ``"data:subspace"`` (where such experiments are drawn).

    Raises:
        ValueError: for an empty list, an element that is not an
            :class:`~mini_adv.regimes.Experiment`, or an unknown preset.
    """
    exps = list(experiments() if exps is None else exps)
    if not exps:
        raise ValueError("plot_regimes needs at least one experiment")
    bad = [type(e).__name__ for e in exps if not isinstance(e, Experiment)]
    if bad:
        raise ValueError(f"plot_regimes takes Experiment records; got {bad}")
    if preset not in ("cpu", "gpu"):
        raise ValueError(f"preset must be 'cpu' or 'gpu'; got {preset!r}")

    ax_r, ax_t = fig.subplots(1, 2)
    d_lo, d_hi = 8.0, 4e5
    grid = np.geomspace(d_lo, d_hi, 200)

    # (a) random networks
    ax_r.axhspan(1.0, 8.0, color=PALETTE["positive"], alpha=0.6, lw=0)
    ax_r.fill_between(grid, 1.0 / grid, 1.0, color=PALETTE["negative"], alpha=0.45, lw=0)
    ax_r.fill_between(grid, 1e-6, 1.0 / grid, color="#dddddd", lw=0)
    ax_r.plot(grid, np.ones_like(grid), "--", color=PALETTE["theory"], lw=1)
    ax_r.plot(grid, grid ** -0.25, "--", color=PALETTE["theory"], lw=1)
    ax_r.plot(grid, 1.0 / grid, "--", color=PALETTE["muted"], lw=1)
    kw = dict(fontsize=7.5, va="center")
    ax_r.text(2.2e3, 2.6, "Bubeck et al.: two layers, overcomplete (ReLU, $h_1 \\geq d$)\n"
              "Montanari & Wu: two layers, any growing width", **kw)
    ax_r.text(10, 0.012, "Bartlett et al.: constant depth,\nevery width a power of $d$", **kw)
    ax_r.text(3e3, 0.06, "Daniely & Shacham:\nthe ratio must fall\nto 0, e.g. $d^{-1/4}$",
              fontsize=7.5, va="center")
    ax_r.text(3e2, 1.2e-4, "below $1/d$: no layer\nof width $\\geq 1$ (two layers)",
              fontsize=7.5, va="center", color="#555555")
    ax_r.set(xscale="log", yscale="log", xlim=(d_lo, d_hi), ylim=(3e-5, 8.0),
             xlabel="input dimension $d$",
             ylabel=r"smallest width ratio $\min_\ell h_\ell/h_{\ell-1}$",
             title="(a) Random weights")

    # (b) trained networks
    ns = np.unique(np.geomspace(2, 400, 60).astype(int))
    d_star = coherence_boundary(ns)
    ax_t.fill_betweenx(ns, d_star, d_hi * 10, color=PALETTE["negative"], alpha=0.45, lw=0)
    curves = ax_t.plot(d_star, ns, "--", color=PALETTE["theory"], lw=1,
                       label=r"$n\,\mu(X) = 1/3$ (typical uniform points)")
    curves += ax_t.plot(grid, vardi_estimate(grid), "--", color=PALETTE["gradient"], lw=1.3,
                        label=r"$n = \sqrt{d/\ln n}$ (our estimate of Vardi et al.'s regime)")
    ax_t.text(300, 2.4, "inside: $n\\,\\mu(X) \\leq 1/3$ (Vardi et al., Frei et al.)",
              fontsize=7.5, va="center")
    ax_t.set(xscale="log", yscale="log", xlim=(d_lo * 4, d_hi), ylim=(2, 900),
             xlabel="input dimension $d$",
             ylabel="training points $n$ (clusters $k$)", title="(b) Trained weights")

    handles, drawn, placed = [], set(), []
    for i, e in enumerate(exps):
        ax = ax_t if e.weights == "trained" else ax_r
        x, y = _points(e, preset)
        # a point on top of an earlier one moves up in 12 % steps, so none hides another
        for shift in range(len(exps)):
            keys = {(e.weights, round(math.log(a), 2), round(math.log(b) + shift * math.log(1.12), 2))
                    for a, b in zip(x, y)}
            if not keys & drawn:
                break
        drawn |= keys
        y = y * 1.12 ** shift
        theorem = bool(_THEOREMS & set(covering(e)))
        colour = CYCLE[i % len(CYCLE)]
        art = ax.scatter(x, y, s=34, marker=MARKERS[e.chapter], edgecolors=colour,
                         facecolors=colour if theorem else "white", linewidths=1.3, zorder=4,
                         label=f"{e.chapter}: {e.name}, {e.rule}")
        art.set_gid(f"experiment:{e.chapter}:{e.name}")
        placed.append((e, x, y))
        handles.append(art)
    _label_data(ax_t, placed)
    fig.legend(handles=handles + curves, loc="lower center", ncol=3, fontsize=7, frameon=False,
               title="filled: a theorem's hypotheses hold; hollow: no theorem covers it "
                     "(an edge)", title_fontsize=8)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.94, bottom=0.36, wspace=0.22)
    return ax_r, ax_t

"""Chapter 5's figures: flip distances of trained networks, their scaling in n, margins.

Each function takes results of :mod:`mini_adv.margin` (:class:`~mini_adv.margin.SweepPoint`,
:class:`~mini_adv.margin.RegimeResult`, :class:`~mini_adv.margin.FlipProfiles`,
:class:`~mini_adv.margin.TrainHistory`) and draws on
given matplotlib axes or a figure.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from mini_adv.figures.style import CYCLE, PALETTE, power_law_axes
from mini_adv.margin import (FlipProfiles, FlipScalingFit, RegimeResult, SweepPoint,
                             TrainHistory, fit_flip_scaling)


def _draw_predictions(ax: Any, ns: np.ndarray) -> None:
    """The idealisation's two lines over the range of ``ns``: 1/√n, the symmetric KKT
    network's flip distance (dashed), and 1/2, the robust network's radius (dotted)."""
    grid = np.geomspace(ns.min() / 1.3, ns.max() * 1.3, 50)
    ax.plot(grid, 1 / np.sqrt(grid), "--", color=PALETTE["theory"],
            label=r"prediction $1/\sqrt{n}$ (symmetric KKT net)")
    ax.plot(grid, np.full_like(grid, 0.5), ":", color=PALETTE["theory"],
            label=r"$1/2$ (robust net, orthogonal data)")


def plot_flip_scaling(ax: Any, sweep: Sequence[SweepPoint]) -> FlipScalingFit:
    """Log-log plot of dist/‖x‖ against n: trained network along û and along ∇N (medians and
    quartiles of the points pooled over the data sets), the robust network's certified radius,
    the fit and the prediction 1/√n (dashed). The trained network's flips are upper bounds on
    its minimal adversarial distance, the certified radius a lower bound on the robust
    network's; the legend says so. Returns the fit along û
    (:func:`mini_adv.margin.fit_flip_scaling`)."""
    ns = np.array([p.n for p in sweep], float)

    def stats(get):
        vals = [get(p) for p in sweep]
        return (np.array([np.median(v) for v in vals]),
                np.array([np.quantile(v, 0.25) for v in vals]),
                np.array([np.quantile(v, 0.75) for v in vals]))

    def fitted(p, arr):
        return arr[p.accuracy >= 1.0]

    series = [
        ("trained net, flip along $-y_i\\hat u$ (upper bound)", PALETTE["gradient"], "o",
         lambda p: fitted(p, p.trained.universal / p.trained.norms)),
        ("trained net, flip along the gradient (upper bound)", PALETTE["accent"], "s",
         lambda p: fitted(p, p.trained.gradient / p.trained.norms)),
        ("robust net, certified radius (lower bound)", PALETTE["random"], "^",
         lambda p: p.robust_radius / p.trained.norms),
    ]
    for label, color, marker, get in series:
        med, lo, hi = stats(get)
        ax.errorbar(ns, med, yerr=[med - lo, hi - med], fmt=marker, color=color, capsize=3,
                    label=label + ": median, pooled quartiles")
    fit = fit_flip_scaling(sweep)
    _draw_predictions(ax, ns)
    ax.set(xlabel="number of training points $n$", ylabel=r"flip distance $/\ \|x\|$")
    power_law_axes(ax, ns, {"C": fit.C, "slope": fit.slope},
                   fit_label=fr"free fit along $\hat u$: ${fit.C:.2f}\,n^{{{fit.slope:.3f}}}$",
                   y_ticks=[0.02, 0.05, 0.1, 0.2, 0.5, 1.0])
    return fit


def plot_regime_bounds(ax: Any, result: RegimeResult) -> None:
    """Inside the regime n·μ(X) ≤ 1/3: an upper bound for the trained net, a lower bound for N_rob.

    For every n of a :func:`mini_adv.margin.regime_experiment` and every training point of
    the fitted data sets, relative to ‖x‖: the trained network's first flip along −y_i û
    (▼, an *upper* bound on its minimal adversarial distance) and the certified radius of
    the robust network (▲, a *lower* bound on its own), drawn side by side with a small
    offset in n; the prediction 1/√n (dashed) and 1/2 (dotted). Where every ▼ lies below
    every ▲, the trained network is provably less robust than N_rob at every point.
    """
    ns = np.array(result.ns, float)
    up_all, lo_all = [], []
    for p in result.points:
        ok = p.accuracy >= 1.0
        up_all.append((p.trained.universal / p.trained.norms)[ok].ravel())
        lo_all.append((p.robust_radius / p.trained.norms)[ok].ravel())
    for vals, shift, marker, color, label in [
            (up_all, 0.97, "v", PALETTE["gradient"],
             r"trained net: flip along $-y_i\hat u$ (upper bound on its minimal distance)"),
            (lo_all, 1.03, "^", PALETTE["random"],
             "robust net: certified radius (lower bound on its minimal distance)")]:
        xs = np.concatenate([np.full(v.size, n * shift) for n, v in zip(ns, vals)])
        ax.scatter(xs, np.concatenate(vals), marker=marker, s=28, color=color, alpha=0.7,
                   label=label)
    _draw_predictions(ax, ns)
    ax.set(xlabel="number of training points $n$", ylabel=r"distance $/\ \|x\|$")
    power_law_axes(ax, ns, y_ticks=[0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0])


_FRAME_BINS = np.linspace(0.0, 3.0, 31)  # the histogram bins of draw_flip_frame (√n·distance/‖x‖)


def flip_frame_hist_max(points: Sequence[SweepPoint]) -> float:
    """The largest bin fraction of :func:`draw_flip_frame`'s histograms over all ``points``,
    with 10 % headroom (at most 1): pass it as ``hist_max`` so that every slider frame has
    the same y axis and no bar is cut off."""
    top = 0.0
    for p in points:
        ok = p.accuracy >= 1.0
        for a in (p.trained.universal, p.trained.gradient):
            vals = np.clip(math.sqrt(p.n) * (a / p.trained.norms)[ok].ravel(), 0, 3)
            if vals.size:
                top = max(top, np.histogram(vals, bins=_FRAME_BINS)[0].max() / vals.size)
    return float(min(1.0, 1.1 * top)) if top > 0 else 1.0


def draw_flip_frame(fig: Any, point: SweepPoint, *, hist_max: float = 0.6) -> None:
    """One frame of the chapter's slider: the flip distances of one :func:`sweep_n` entry.

    Left: per training point (sorted), the trained network's flip distance along −y_i û and
    along the gradient and the robust network's certified radius, in units of ‖x‖, with
    the prediction 1/√n (dashed) and 1/2 (dotted). Right: histograms of √n·distance/‖x‖,
    whose prediction (1 along û) does not depend on n; each pools the points of all fitted
    data sets of this n and shows the *fraction* of those points per bin, so that frames of
    different n (different numbers of points) share the axes (y from 0 to ``hist_max``).

    Raises:
        ValueError: for ``hist_max`` not in (0, 1].
    """
    if not 0.0 < hist_max <= 1.0:
        raise ValueError(f"hist_max must be a fraction in (0, 1]; got {hist_max!r}")
    ok = point.accuracy >= 1.0
    t = point.trained
    rel = lambda a: np.sort((a / t.norms)[ok].ravel())  # noqa: E731
    curves = [(rel(t.universal), PALETTE["gradient"], r"trained, along $-y_i\hat u$ (upper bound)"),
              (rel(t.gradient), PALETTE["accent"], "trained, along the gradient (upper bound)"),
              (np.sort((point.robust_radius / t.norms).ravel()), PALETTE["random"],
               "robust net, certified radius (lower bound)")]
    ax1, ax2 = fig.subplots(1, 2)
    for vals, color, label in curves:
        ax1.plot(np.linspace(0, 1, vals.size), vals, "-", color=color, lw=2, label=label)
    ax1.axhline(1 / math.sqrt(point.n), ls="--", color=PALETTE["theory"],
                label=r"prediction $1/\sqrt{n}$")
    ax1.axhline(0.5, ls=":", color=PALETTE["theory"], label=r"$1/2$")
    ax1.set(ylim=(0, 0.8), xlabel="training points, sorted (fraction)",
            ylabel=r"distance $/\ \|x\|$", title=f"n = {point.n}, d = {point.d}")
    root_n = math.sqrt(point.n)
    for vals, color, label in curves[:2]:
        ax2.hist(np.clip(root_n * vals, 0, 3), bins=_FRAME_BINS, color=color, alpha=0.6, label=label,
                 weights=np.full(vals.size, 1.0 / max(vals.size, 1)))
    ax2.axvline(1.0, ls="--", color=PALETTE["theory"])
    n_sets = int(np.sum(ok))
    ax2.set(xlabel=r"$\sqrt{n}\,\cdot$ distance $/\ \|x\|$", ylim=(0, hist_max),
            ylabel=f"fraction of the {n_sets}·{point.n} points ({n_sets} data sets pooled)",
            title=r"scaled by $\sqrt{n}$ (prediction 1, dashed)")
    handles, labels = ax1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False, fontsize=9)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.92, bottom=0.25, wspace=0.22)


def draw_profiles(ax: Any, profiles: FlipProfiles) -> None:
    """N along straight lines from every training point, in units of the prediction ‖x‖/√n.

    Draws y_i N(x_i + t u_i)/y_i N(x_i) against t/(‖x_i‖/√n) (one line per point) for the
    three directions of :func:`mini_adv.margin.flip_profiles`, with the prediction t = 1
    dashed. A value below 0 means the sign has flipped.
    """
    styles = {"universal": (PALETTE["gradient"], r"along $-y_i\hat u$"),
              "gradient": (PALETTE["accent"], "along the gradient"),
              "random": (PALETTE["random"], "random direction")}
    for name in FlipProfiles.DIRECTIONS:
        color, label = styles[name]
        ax.plot(profiles.t, getattr(profiles, name), "-", color=color, lw=1, alpha=0.6)
        ax.plot([], [], "-", color=color, lw=2, label=label)
    ax.axhline(0.0, color="black", lw=0.8)
    ax.axvline(1.0, ls="--", color=PALETTE["theory"], label=r"prediction $t = \|x\|/\sqrt{n}$")
    ax.set(xlabel=r"distance $t$ moved from $x_i$ (units of $\|x\|/\sqrt{n}$)",
           ylabel=r"$y_i N(x_i + t u_i)\ /\ y_i N(x_i)$")
    ax.legend(loc="lower left", fontsize=9)


def plot_margin_growth(ax: Any, histories: Mapping[str, TrainHistory], *,
                       reference: float | None = None) -> None:
    """The normalised margin γ̄(θ_t) against the step t (log axis) for each labelled history,
    from the first step at which every point is fitted; with ``reference``, a dashed line at
    that value, labelled as the normalised margin √d/(2√(2n)) of the symmetric KKT point on
    exactly orthogonal data (chapter 5, ``lem-symmetric``), a reference for the order of the
    limit."""
    for (label, h), color in zip(histories.items(), CYCLE):
        t0 = h.fitted_at
        if t0 is None:
            continue
        t = h.steps[max(t0, 1):]
        ax.plot(t, h.normalized_margin[t], "-", color=color, lw=2, label=label)
    if reference is not None:
        ax.axhline(reference, ls="--", color=PALETTE["theory"],
                   label=r"symmetric KKT point, orthogonal data: $\sqrt{d}/(2\sqrt{2n})$")
    ax.set(xscale="log", xlabel="step $t$",
           ylabel=r"normalised margin $\min_i y_i N(x_i)/\|\theta\|^2$")
    ax.legend(loc="center left", fontsize=9)  # the left half is empty above the early margins

"""Chapter 3's figures and tables: the scaling law, the breakdowns, the flow's plane.

* :func:`plot_scaling` — mean relative flip distance against d, with the fit.
* :func:`plot_rescaled`, :func:`rescaled_table` — √d · mean ‖δ‖/‖x‖ against d for several
  width rules, with √(2/π).
* :func:`plot_breakdown`, :func:`breakdown_table` — where the flow fails (bottlenecks, depth).
* :func:`methods_table` — the rows of :func:`mini_adv.scaling.compare_methods`.
* :func:`draw_flow_plane` — the flow's path in the plane of x and ∇f(x).
* :func:`draw_flow_paths`, :func:`flow_paths_limits` — many paths, each in its own plane, on
  axes fixed across the frames of a slider.

They take the results of :mod:`mini_adv.scaling` and draw on a figure or axes the caller creates.
"""

from __future__ import annotations

from typing import Any, Sequence

import math

import jax
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from mini_adv.figures.style import PALETTE, power_law_axes
from mini_adv.nets import Network
from mini_adv.scaling import (SQRT_2_OVER_PI, FlowMeasurement, FlowPaths, FlowPlane,
                              FlowScalingFit, MethodRow, fit_flow_scaling, flow_plane)
from mini_adv.stats import network_mean


def plot_scaling(ax: Any, sweep: Sequence[FlowMeasurement]) -> FlowScalingFit:
    """Log-log plot of the mean relative flip distance against d with the fitted power law
    (:func:`~mini_adv.scaling.fit_flow_scaling`) and the prediction √(2/π)/√d; returns the fit."""
    dims = np.array([m.d for m in sweep], float)
    means = [network_mean(np.where(m.flipped, m.rel_distance, np.nan)) for m in sweep]
    mean = np.array([v.mean for v in means])
    se = np.array([v.se for v in means])
    lin = np.array([np.mean(m.rel_linear[np.isfinite(m.rel_linear)]) for m in sweep])
    fit = fit_flow_scaling(sweep)
    ax.errorbar(dims, mean, yerr=2 * se, fmt="o", color=PALETTE["gradient"], capsize=3,
                label=r"gradient flow: mean $\|\delta\|/\|x\|$ ($\pm 2$ s.e., networks)")
    ax.plot(dims, lin, "s", mfc="none", color=PALETTE["random"],
            label=r"linearisation: mean $|f|/(\|\nabla f\|\,\|x\|)$")
    grid = np.geomspace(dims.min() / 1.3, dims.max() * 1.3, 50)
    ax.plot(grid, SQRT_2_OVER_PI / np.sqrt(grid), "--", color=PALETTE["theory"],
            label=r"prediction $\sqrt{2/\pi}\,/\sqrt{d}$")
    ax.set(xlabel="input dimension $d$", ylabel=r"relative flip distance $\|\delta\|/\|x\|$")
    power_law_axes(ax, dims, fit,
                   fit_label=fr"fitted power law: slope ${fit.slope:.2f} \pm {2 * fit.slope_se:.2f}$ (2 s.e.)",
                   y_ticks=[0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.07, 0.1, 0.2])
    ax.legend(loc="lower left")
    return fit


def plot_rescaled(ax: Any, series: Sequence[tuple[str, Sequence[FlowMeasurement]]]) -> None:
    """√d · mean ‖δ‖/‖x‖ (± 2 s.e. over networks) against d, one series per ``(label, sweep)``.

    The rescaled distance is flat in d exactly when ‖δ‖/‖x‖ ∝ d^{−1/2}; the dashed line is the
    linear heuristic's mean √(2/π) = E|Z| (chapter 1). The x-axis is logarithmic, the y-axis
    linear (from 0), and the series are offset slightly in d so that their bars do not overlap.
    """
    markers, colors = "os^D", [PALETTE["gradient"], PALETTE["random"], PALETTE["muted"],
                               PALETTE["theory"]]
    all_d = []
    for i, (label, sweep) in enumerate(series):
        dims = np.array([m.d for m in sweep], float)
        all_d.extend(dims)
        stats = [network_mean(np.where(m.flipped, m.rel_distance, np.nan), scale=np.sqrt(m.d))
                 for m in sweep]
        shift = 1.0 + 0.04 * (i - (len(series) - 1) / 2)
        ax.errorbar(dims * shift, [s.mean for s in stats], yerr=[2 * s.se for s in stats],
                    fmt=markers[i % 4] + "-", color=colors[i % 4], capsize=3, label=label)
    lo, hi = min(all_d) / 1.4, max(all_d) * 1.4
    (line,) = ax.plot([lo, hi], [SQRT_2_OVER_PI] * 2, "--", color=PALETTE["theory"],
                      label=r"linear heuristic: $\sqrt{2/\pi} = \mathbb{E}|Z|$")
    ax.set(xscale="log", xlim=(lo, hi), xlabel="input dimension $d$",
           ylabel=r"$\sqrt{d}\,$mean $\|\delta\|/\|x\|$ (gradient flow)")
    ticks = sorted(set(int(v) for v in all_d))
    ax.set_xticks(ticks, [str(v) for v in ticks])
    ax.minorticks_off()
    top = max(1.6 * SQRT_2_OVER_PI, ax.get_ylim()[1])
    ax.set_ylim(0, top)
    handles, labels = ax.get_legend_handles_labels()  # the series first, then the heuristic
    order = [i for i, h in enumerate(handles) if h is not line] + [handles.index(line)]
    ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="lower left",
              fontsize=9)


def rescaled_table(series: Sequence[tuple[str, Sequence[FlowMeasurement]]]) -> str:
    """A text table of :func:`plot_rescaled`'s points: per d and ``(name, sweep)``, the widths,
    the fraction flipped and √d · mean ‖δ‖/‖x‖ ± 2 s.e. (over networks)."""
    head = (f"{'d':>5} {'rule':>10} {'widths':>18} {'flipped':>8} "
            f"{'√d·‖δ‖/‖x‖ ± 2 s.e.':>20}")
    lines = [head]
    by_d: dict[int, list[tuple[str, FlowMeasurement]]] = {}
    for name, sweep in series:
        for m in sweep:
            by_d.setdefault(m.d, []).append((name, m))
    for d in sorted(by_d):
        for name, m in by_d[d]:
            s = m.summary()
            se2 = 2 * s["sqrt_d_rel_distance_se"]
            lines.append(f"{d:5d} {name:>10} {str(list(m.widths)):>18} {s['flip_rate']:8.1%} "
                         f"{s['sqrt_d_rel_distance']:12.3f} ± {se2:.3f}")
    return "\n".join(lines)


def plot_breakdown(fig: Any, panels: Sequence[tuple[Sequence[FlowMeasurement], Sequence[float], str, str]]
                   ) -> None:
    """One panel per ``(measurements, xs, xlabel, title)``: against a size parameter, the
    three outcomes of the flow, which add up to 1 — inputs flipped (± 2 s.e. over networks),
    inputs stuck where f ≡ 0 (f(x₀) = 0, or the flow stopped at ∇f = 0), inputs whose flow
    used up its budget (path length or steps) while still descending — and the fraction of
    networks on which no input flipped; one legend below the panels."""
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (measurements, xs, xlabel, title) in zip(axes, panels):
        summ = [m.summary() for m in measurements]
        per_net = [m.flipped.mean(axis=1) for m in measurements]
        se2 = [2 * (v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else 0.0) for v in per_net]
        flipped = np.array([s["flip_rate"] for s in summ])
        flat = np.array([s["flat_rate"] for s in summ])
        ax.errorbar(xs, flipped, yerr=se2, fmt="o-", color=PALETTE["gradient"], capsize=3,
                    label=r"inputs flipped ($\pm 2$ s.e., networks)")
        ax.plot(xs, flat, "s--", color=PALETTE["muted"],
                label=r"inputs stuck where $f \equiv 0$ ($f(x_0) = 0$ or $\nabla f = 0$ on the way)")
        ax.plot(xs, np.clip(1.0 - flipped - flat, 0.0, 1.0), "D-.", color=PALETTE["theory"],
                mfc="none", label="inputs whose flow used up its budget")
        ax.plot(xs, [s["networks_without_flip"] for s in summ], "^:", color=PALETTE["random"],
                label="networks with no flip at all")
        ax.set(xscale="log", xlabel=xlabel, ylim=(-0.03, 1.03), title=title)
        ax.set_xticks(list(xs), [f"{v:g}" for v in xs])
        ax.minorticks_off()
    axes[0].set_ylabel("fraction")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False, fontsize=9)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.27, wspace=0.08)


def breakdown_table(rows: Sequence[tuple[str, FlowMeasurement]]) -> str:
    """A compact text table of :meth:`~mini_adv.scaling.FlowMeasurement.summary` rows labelled by ``name``."""
    head = f"{'':>8} {'flipped':>8} {'stuck':>7} {'no-flip nets':>13} {'√d·‖δ‖/‖x‖':>11} {'flow/linear':>12}"
    lines = [head]
    for name, m in rows:
        s = m.summary()
        lines.append(f"{name:>8} {s['flip_rate']:8.1%} {s['flat_rate']:7.1%} "
                     f"{s['networks_without_flip']:13.1%} {s['sqrt_d_rel_distance']:11.2f} "
                     f"{s['flow_over_linear_median']:12.3f}")
    return "\n".join(lines)


def methods_table(rows: Sequence[MethodRow]) -> str:
    """The rows of :func:`~mini_adv.scaling.compare_methods` as a plain-text table."""
    head = f"{'method':26s} {'flipped':>8s} {'√d·‖δ‖/‖x‖':>11s} {'‖δ‖/linear':>11s} {'evals':>7s}  verified"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.method:26s} {r.flip_rate:8.1%} {r.sqrt_d_rel_median:11.3f} "
                     f"{r.over_linear_median:11.3f} {r.evaluations:7.1f}  "
                     f"{'yes' if r.verified else 'NO'}")
    return "\n".join(lines)


def draw_flow_plane(fig: Any, net: Network, x: jax.Array, *, n_steps: int = 400,
                    resolution: int = 161, with_crossing_plane: bool = False,
                    title: str | None = None) -> FlowPlane:
    """The flow's path from x drawn in the plane spanned by x and ∇f(x).

    Computes :func:`mini_adv.scaling.flow_plane` (see there for the coordinates: x at (0, 0),
    units of ‖x‖/√d) and draws each plane: sign f as the background, the boundary f = 0 in
    that plane, the projected path, x, and the first point past the boundary (a star) if the
    path crossed. With ``with_crossing_plane`` a second panel shows the plane of x and
    x(T) − x, where the path ends on the drawn boundary. The title reports the distance, the
    path length and how far the path leaves the plane, or why it did not cross.

    Returns:
        The :class:`~mini_adv.scaling.FlowPlane` that was drawn.
    """
    out = flow_plane(net, x, n_steps=n_steps, resolution=resolution,
                     with_crossing_plane=with_crossing_plane)
    axes = fig.subplots(1, len(out.panels), squeeze=False)[0]
    for ax, pl in zip(axes, out.panels):
        ax.contourf(pl.A, pl.B, np.sign(pl.F), levels=[-1.5, 0, 1.5],
                    colors=[PALETTE["negative"], PALETTE["positive"]])
        ax.contour(pl.A, pl.B, pl.F, levels=[0.0], colors="black", linewidths=1.2)
        ax.plot(pl.a, pl.b, "-", color=PALETTE["gradient"], lw=2)
        ax.plot([0.0], [0.0], "o", color="black", ms=6, zorder=5)
        if out.crossed:
            ax.plot([pl.a[-1]], [pl.b[-1]], "*", color=PALETTE["gradient"], ms=12, zorder=5)
        ax.set(xlabel=r"along $x$ (units of $\|x\|/\sqrt{d}$)",
               ylabel=f"along {pl.axis_label} (units of " + r"$\|x\|/\sqrt{d}$)", aspect="equal")
        ax.set_title(pl.title, fontsize=10)
        ax.grid(False)
    handles = [Patch(color=PALETTE["positive"], label="$f > 0$"),
               Patch(color=PALETTE["negative"], label="$f < 0$"),
               Line2D([], [], color="black", lw=1.2, label="$f = 0$ in this plane"),
               Line2D([], [], color=PALETTE["gradient"], lw=2, label="flow path (projected)")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=9)
    fig.subplots_adjust(bottom=0.2, top=0.86)
    if out.crossed:
        what = "‖x(T) − x‖"
    else:
        why = "the flow reached ∇f = 0" if out.stop == "zero gradient" else f"{out.n_steps} steps"
        what = f"no crossing ({why}); ‖x(end) − x‖"
    fig.suptitle(title or (f"d = {out.d}: {what} = {out.distance:.2f}, path {out.path:.2f}, "
                           f"off the (x, ∇f) plane ≤ {out.off_plane:.2f}  (units ‖x‖/√d)"),
                 fontsize=10)
    return out


def flow_paths_limits(frames: Sequence[FlowPaths]) -> tuple[float, float]:
    """``(a_max, b_max)``: axes that hold every path of every frame of :func:`draw_flow_paths`
    (b up to the highest crossing, rounded up to 0.5; a within ±a_max, at least ±b_max/2 so that
    the equal-aspect panel is not a sliver), so that a slider over d keeps its axes fixed and
    only the paths change."""
    b_top = max(float(np.nanmax(np.where(p.crossed[..., None], p.b, np.nan)))
                if p.crossed.any() else 1.0 for p in frames)
    a_top = max(float(np.nanmax(np.abs(p.a))) for p in frames)
    b_max = max(1.0, math.ceil(2 * 1.05 * b_top) / 2)
    return max(b_max / 2, math.ceil(2 * 1.05 * a_top) / 2), b_max


def draw_flow_paths(fig: Any, paths: FlowPaths, *, limits: tuple[float, float] | None = None
                    ) -> None:
    """The flow's paths from many inputs (left) and the fraction flipped within a distance
    (right), in units of ‖x‖/√d, in which the prediction does not depend on d.

    Left: each path in its own plane of x and ∇f(x) (:func:`~mini_adv.scaling.flow_paths`),
    from x at (0, 0), with a star at its first point past the boundary, and the linear
    heuristic's mean height √(2/π) dashed. Right: the empirical distribution of the crossing
    distance √d‖x(T) − x‖/‖x‖ (the fraction of inputs flipped within t), against the linear
    heuristic's P(|Z| ≤ t) = erf(t/√2), dashed. ``limits`` = ``(a_max, b_max)`` from
    :func:`flow_paths_limits` fixes the axes (a ∈ ±a_max, b and t ∈ [0, b_max]).
    """
    a_max, b_max = limits or flow_paths_limits([paths])
    ax, bx = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[1, 1.3]))
    crossed = paths.crossed.ravel()
    A, B = paths.a.reshape(crossed.size, -1), paths.b.reshape(crossed.size, -1)
    for a, b, ok in zip(A, B, crossed):
        keep = np.isfinite(a)
        color = PALETTE["gradient"] if ok else PALETTE["muted"]
        ax.plot(a[keep], b[keep], "-", color=color, lw=1, alpha=0.7)
        if ok:
            ax.plot([a[keep][-1]], [b[keep][-1]], "*", color=color, ms=7)
    ax.plot([0.0], [0.0], "o", color="black", ms=5, zorder=5)
    ax.axhline(SQRT_2_OVER_PI, ls="--", color=PALETTE["theory"], lw=1)
    ax.set(xlim=(-a_max, a_max), ylim=(-0.05 * b_max, b_max), aspect="equal",
           xlabel=r"along $x$ (units $\|x\|/\sqrt{d}$)",
           ylabel=r"along $-\mathrm{sign}(f)\nabla f(x)_\perp$ (units $\|x\|/\sqrt{d}$)",
           title="paths, each in its own plane")
    t = np.sort(paths.distance.ravel()[crossed])
    n = crossed.size
    bx.step(np.r_[0.0, t, b_max], np.r_[0.0, np.arange(1, t.size + 1) / n, t.size / n],
            where="post", color=PALETTE["gradient"], lw=2, label="measured (flow)")
    grid = np.linspace(0.0, b_max, 200)
    bx.plot(grid, [math.erf(v / math.sqrt(2.0)) for v in grid], "--", color=PALETTE["theory"],
            label=r"linear heuristic $P(|Z| \leq t)$")
    bx.set(xlim=(0.0, b_max), ylim=(0.0, 1.02), xlabel=r"$t$ (units $\|x\|/\sqrt{d}$)",
           ylabel=r"fraction flipped within $t$", title="inputs flipped within distance $t$")
    bx.legend(loc="lower right", fontsize=9)
    n_net, n_in = paths.crossed.shape
    fig.suptitle(f"d = {paths.d}, widths {list(paths.widths)}: {int(crossed.sum())} of {n} "
                 f"paths crossed ({n_net} networks × {n_in} inputs)", fontsize=10)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.86, wspace=0.3)

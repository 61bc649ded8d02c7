"""Chapter 4's figures: the one-step flip law and the conditioning decomposition.

Each function takes results of :mod:`mini_adv.conditioning` (:class:`OneStepSamples`,
:class:`IndependenceSamples`, :class:`ResidualScaling`) and draws on given matplotlib axes or
a figure; none computes a new experiment.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from mini_adv.conditioning import IndependenceSamples, OneStepSamples, ResidualScaling
from mini_adv.figures.style import CYCLE, PALETTE

ACTIVATION_COLORS: dict[str, str] = {
    "relu": "#0072B2",      # blue
    "tanh": "#E69F00",      # orange
    "gelu": "#009E73",      # bluish green
    "softplus": "#CC79A7",  # reddish purple
    "sin": "#56B4E9",       # sky blue
    "abs": "#D55E00",       # vermillion
    "square": "#6E6E6E",    # grey
}
"""One colour per activation in every chapter-4 figure (the Okabe–Ito colour-blind-safe set,
with grey for the seventh); markers differ as well (:data:`ACTIVATION_MARKERS`)."""

ACTIVATION_MARKERS: dict[str, str] = {"relu": "o", "tanh": "s", "gelu": "^", "softplus": "D",
                                      "sin": "v", "abs": "P", "square": "X"}


def _style(label: str, k: int) -> tuple[str, str]:
    """(colour, marker) of an entry: the activation's own if ``label`` names one, else the
    k-th of the book's cycle with a circle."""
    return ACTIVATION_COLORS.get(label, CYCLE[k % len(CYCLE)]), ACTIVATION_MARKERS.get(label, "o")


def plot_joint(ax: Any, samples: OneStepSamples, i: int = 0, *, max_points: int = 3000,
               legend: bool = True, normalise: bool = False, lim: float | None = None,
               alpha: float = 0.5) -> None:
    """Scatter of (f(x), f(x')) at step ``s[i]`` against the prediction f' = f − s·sign(f)·χ.

    χ = E‖∇f‖² from :meth:`OneStepSamples.moments`; the predicted flip region |f(x)| < s·χ is
    shaded. Flipped samples are red, the others blue. With ``normalise`` both axes are divided
    by the predicted standard deviation √(E σ(Z)²) of f(x): then the band is |f|/√(E σ(Z)²) < τ
    with τ = s·χ/√(E σ(Z)²), and the same τ (the same predicted flip probability) gives the
    same predicted picture for every activation. ``lim`` fixes the x range to (−lim, lim) and
    the y range to (−lim − τ, lim + τ) (default: from the data). ``alpha`` is the points'
    opacity (opaque points keep a slider's PNG frames small).
    """
    s = float(samples.s[i])
    var_f, chi = samples.moments()
    scale = math.sqrt(var_f) if normalise else 1.0
    f = samples.f.ravel() / scale
    fa = samples.f_adv[i].ravel() / scale
    fl = samples.flipped[i].ravel()
    keep = slice(None, max_points)
    gap = s * chi / scale
    if lim is None:
        lim = float(np.quantile(np.abs(f), 0.995)) * 1.05
    unit = r"/\sqrt{\mathbb{E}\sigma(Z)^2}" if normalise else ""
    ax.axvspan(-gap, gap, color=PALETTE["muted"], alpha=0.12, lw=0,
               label=r"predicted flips: $|f(x)| < s\,\mathbb{E}\sigma'(Z)^2$")
    ax.plot(f[keep][fl[keep]], fa[keep][fl[keep]], ".", ms=3, alpha=alpha,
            color=PALETTE["gradient"], label="flipped")
    ax.plot(f[keep][~fl[keep]], fa[keep][~fl[keep]], ".", ms=3, alpha=alpha,
            color=PALETTE["random"], label="not flipped")
    for branch, label in ((np.linspace(0.0, lim, 101), r"$f(x) - s\,\mathrm{sign}(f(x))\,\mathbb{E}\sigma'(Z)^2$"),
                          (np.linspace(-lim, 0.0, 101), None)):
        ax.plot(branch, branch - np.sign(branch.mean()) * gap, "--",
                color=PALETTE["theory"], lw=1.5, label=label)
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, color="black", lw=0.6)
    ax.set(xlim=(-lim, lim), xlabel=rf"$f(x){unit}$", ylabel=rf"$f(x'){unit}$")
    if normalise:
        ax.set_ylim(-lim - gap, lim + gap)
    if legend:
        ax.legend(loc="upper left", fontsize=8)


def plot_flip_curves(ax: Any, results: Mapping[str, OneStepSamples], *,
                     s_max: float | None = None) -> None:
    """Measured flip rates (±2 s.e. over networks; no bar for a single network) against s,
    one colour per entry (an activation's own, :data:`ACTIVATION_COLORS`), with each entry's
    predicted law dashed in the same colour (one black dashed line when all predictions
    coincide)."""
    items = list(results.items())
    s_max = s_max or max(float(r.s.max()) for _, r in items)
    grid = np.linspace(s_max / 200, s_max, 200)
    preds = [r.predicted_flip_rate(grid) for _, r in items]
    shared = all(np.allclose(p, preds[0], atol=1e-9) for p in preds)
    for k, ((label, r), pred) in enumerate(zip(items, preds)):
        color, marker = _style(label, k)
        yerr = 2 * r.flip_rate_se if r.n_networks > 1 else None
        ax.errorbar(r.s, r.flip_rate, yerr=yerr, fmt=marker, ms=4, capsize=2,
                    color=color, label=f"{label} (measured)")
        if not shared:
            ax.plot(grid, pred, "--", color=color, lw=1.2)
    if shared:
        ax.plot(grid, preds[0], "--", color=PALETTE["theory"], lw=1.5, label="prediction")
    else:
        ax.plot([], [], "--", color=PALETTE["theory"], label=r"prediction $2\Phi(\cdot) - 1$")
    ax.set(xlabel=r"step size $s$", ylabel="fraction of inputs flipped", ylim=(0, 1.03),
           xlim=(0, s_max * 1.02))


def plot_flip_deviation(ax: Any, results: Mapping[str, OneStepSamples], *,
                        jitter: float = 0.045) -> None:
    """Measured minus predicted flip rate against s, ±2 s.e. over networks, one colour and
    marker per entry, each entry shifted sideways by ``jitter`` (in units of s) so that the
    bars do not overlap; the prediction (zero deviation) is the dashed line."""
    items = list(results.items())
    for k, (label, r) in enumerate(items):
        color, marker = _style(label, k)
        shift = jitter * (k - (len(items) - 1) / 2)
        ax.errorbar(r.s + shift, r.flip_rate - r.predicted_flip_rate(),
                    yerr=2 * r.flip_rate_se if r.n_networks > 1 else None, fmt=marker, ms=4,
                    capsize=2, color=color, label=label)
    ax.axhline(0.0, color=PALETTE["theory"], ls="--", lw=1.5, label="prediction")
    s_max = max(float(r.s.max()) for _, r in items)
    ax.set(xlabel=r"step size $s$", ylabel="measured $-$ predicted flip rate",
           xlim=(0, s_max + 0.25))


def plot_residual_spread(ax: Any, spreads: Mapping[str, ResidualScaling]) -> None:
    """Standard deviation of the residual R = f(x') − (f(x) − s·sign(f(x))‖∇f(x)‖²) against d, one line
    per entry (:func:`mini_adv.conditioning.residual_scaling`), log-log, with the fitted power
    law in the legend."""
    for k, (label, sp) in enumerate(spreads.items()):
        color, marker = _style(label, k)
        ax.plot(sp.dims, sp.sd, marker, color=color, label=f"{label}: fit $\\propto d^{{{sp.slope:.2f}}}$")
        ax.plot(sp.dims, sp.C * sp.dims**sp.slope, "-", color=color, lw=1)
    ax.set(xscale="log", yscale="log", xlabel="input dimension $d$",
           ylabel="s.d. of the residual $R$")
    dims = sorted({int(d) for sp in spreads.values() for d in sp.dims})
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.minorticks_off()
    ax.legend(fontsize=9)


def plot_independence(fig: Any, ind: IndependenceSamples, *, threshold: float = 1.5,
                      max_points: int = 3000, alpha: float = 0.5) -> None:
    """Three panels: ⟨w, u⟩ against g = ⟨w, x⟩ for rows of W (left) and ⟨P⊥w, u⟩ against g
    for rows of W P⊥ (middle), and the histograms of ⟨P⊥w, u⟩ for |g| > threshold and for
    |g| < 1/threshold with the predicted law N(0, sin²α/d) dashed (α = the angle between x
    and u, written in degrees), beside the histogram of
    ⟨w, u⟩ for |g| > threshold (right). ``alpha``: the points' opacity (opaque points give
    smaller PNGs)."""
    ax1, ax2, ax3 = fig.subplots(1, 3)
    k = slice(None, max_points)
    lim = 1.05 * float(np.max(np.abs(ind.w_u[k])))
    for ax, y, color, what in ((ax1, ind.w_u, PALETTE["random"], r"\langle w_i, u\rangle"),
                               (ax2, ind.perp_u, PALETTE["gradient"], r"\langle P_\perp w_i, u\rangle")):
        r = float(np.corrcoef(ind.g, y)[0, 1])
        ax.plot(ind.g[k], y[k], ".", ms=2.5, alpha=alpha, color=color)
        ax.set(xlabel=r"$g_i = \langle w_i, x\rangle$", ylabel=f"${what}$", ylim=(-lim, lim),
               title=f"corr = {r:.3f} ({ind.g.size} rows)")
    big, small = ind.split(threshold)
    sd = math.sqrt((1.0 - ind.cos_angle**2) / ind.d)  # predicted s.d. of ⟨P⊥w, u⟩
    grid = np.linspace(-lim, lim, 201)
    opts = dict(bins=np.linspace(-lim, lim, 61), density=True, histtype="step", lw=1.6)
    ax3.hist(ind.perp_u[big], color=PALETTE["gradient"],
             label=rf"$\langle P_\perp w, u\rangle$, $|g| > {threshold:g}$", **opts)
    ax3.hist(ind.perp_u[small], color=PALETTE["accent"],
             label=rf"$\langle P_\perp w, u\rangle$, $|g| < {1 / threshold:.2f}$", **opts)
    ax3.hist(ind.w_u[big], color=PALETTE["random"],
             label=rf"$\langle w, u\rangle$, $|g| > {threshold:g}$", **opts)
    angle = math.degrees(math.acos(ind.cos_angle))
    ax3.plot(grid, np.exp(-grid**2 / (2 * sd**2)) / (sd * math.sqrt(2 * math.pi)), "--",
             color=PALETTE["theory"], label=rf"prediction $\mathcal{{N}}(0, \sin^2{angle:.0f}^\circ/d)$")
    ax3.set_ylim(0, 1.75 * ax3.get_ylim()[1])  # room for the legend above the peak
    ax3.set(xlabel=r"projection on $u$", ylabel="density", title=rf"law given $|g|$ (angle$(x, u) = {angle:.0f}^\circ$)")
    ax3.legend(loc="upper left", fontsize=8.5)
    fig.tight_layout()


def draw_law_frame(fig: Any, matched: Mapping[str, OneStepSamples], activation: str, *,
                   lim: float = 3.5, max_points: int = 600) -> None:
    """One frame of the chapter's interactive figure: for ``activation``, the joint scatter of
    (f(x), f(x')) at the one step size of ``matched[activation]`` (chosen by
    :func:`mini_adv.conditioning.step_for_flip_probability`), both axes divided by
    √(E σ(Z)²) (:func:`plot_joint` with ``normalise``), with the measured and the predicted
    flip rate in the title.

    The axes are the same in every frame, and so are the predicted lines and band when every
    activation's step has the same predicted flip probability: only the measured points
    change from frame to frame.
    """
    m = matched[activation]
    ax = fig.subplots()
    plot_joint(ax, m, 0, max_points=max_points, normalise=True, lim=lim, legend=True,
               alpha=1.0)
    ax.legend(loc="upper left", fontsize=7.5)
    p_hat, p = float(m.flip_rate[0]), float(m.predicted_flip_rate()[0])
    ax.set_title(f"{activation}, s = {m.s[0]:.2f}: flipped {p_hat:.3f} (predicted {p:.3f})",
                 fontsize=11)
    fig.tight_layout()

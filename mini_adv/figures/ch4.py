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


def plot_joint(ax: Any, samples: OneStepSamples, i: int = 0, *, max_points: int = 3000,
               legend: bool = True) -> None:
    """Scatter of (f(x), f(x')) at step ``s[i]`` against the prediction f' = f − s·sign(f)·χ.

    χ = E‖∇f‖² from :meth:`OneStepSamples.moments`; the predicted flip region |f(x)| < s·χ is
    shaded. Flipped samples are red, the others blue.
    """
    s = float(samples.s[i])
    f, fa, fl = samples.f.ravel(), samples.f_adv[i].ravel(), samples.flipped[i].ravel()
    keep = slice(None, max_points)
    chi = samples.moments()[1]
    lim = float(np.quantile(np.abs(f), 0.995)) * 1.05
    ax.axvspan(-s * chi, s * chi, color=PALETTE["muted"], alpha=0.12, lw=0,
               label=r"predicted flips: $|f(x)| < s\,\mathbb{E}\sigma'(G)^2$")
    ax.plot(f[keep][fl[keep]], fa[keep][fl[keep]], ".", ms=3, alpha=0.5,
            color=PALETTE["gradient"], label="flipped")
    ax.plot(f[keep][~fl[keep]], fa[keep][~fl[keep]], ".", ms=3, alpha=0.5,
            color=PALETTE["random"], label="not flipped")
    for branch, label in ((np.linspace(0.0, lim, 101), r"$f(x) - s\,\mathrm{sign}(f)\,\mathbb{E}\sigma'(G)^2$"),
                          (np.linspace(-lim, 0.0, 101), None)):
        ax.plot(branch, branch - s * np.sign(branch.mean()) * chi, "--",
                color=PALETTE["theory"], lw=1.5, label=label)
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, color="black", lw=0.6)
    ax.set(xlim=(-lim, lim), xlabel=r"$f(x)$", ylabel=r"$f(x')$")
    if legend:
        ax.legend(loc="upper left", fontsize=8)


def plot_flip_curves(ax: Any, results: Mapping[str, OneStepSamples], *,
                     s_max: float | None = None) -> None:
    """Measured flip rates (±2 s.e. over networks; no bar for a single network) against s,
    one colour per entry, with each entry's predicted law dashed in the same colour (one
    black dashed line when all predictions coincide)."""
    items = list(results.items())
    s_max = s_max or max(float(r.s.max()) for _, r in items)
    grid = np.linspace(s_max / 200, s_max, 200)
    preds = [r.predicted_flip_rate(grid) for _, r in items]
    shared = all(np.allclose(p, preds[0], atol=1e-9) for p in preds)
    for k, ((label, r), pred) in enumerate(zip(items, preds)):
        color = CYCLE[k % len(CYCLE)]
        yerr = 2 * r.flip_rate_se if r.n_networks > 1 else None
        ax.errorbar(r.s, r.flip_rate, yerr=yerr, fmt="o", ms=4, capsize=2,
                    color=color, label=f"{label} (measured)")
        if not shared:
            ax.plot(grid, pred, "--", color=color, lw=1.2)
    if shared:
        ax.plot(grid, preds[0], "--", color=PALETTE["theory"], lw=1.5, label="prediction")
    else:
        ax.plot([], [], "--", color=PALETTE["theory"], label=r"prediction $2\Phi(\cdot) - 1$")
    ax.set(xlabel=r"step size $s$", ylabel="fraction of inputs flipped", ylim=(0, 1.03),
           xlim=(0, s_max * 1.02))


def plot_residual_spread(ax: Any, spreads: Mapping[str, ResidualScaling]) -> None:
    """Standard deviation of the residual f(x') − (f(x) − s·sign(f)‖∇f‖²) against d, one line
    per entry (:func:`mini_adv.conditioning.residual_scaling`), log-log, with the fitted power
    law in the legend."""
    for k, (label, sp) in enumerate(spreads.items()):
        color = CYCLE[k % len(CYCLE)]
        ax.plot(sp.dims, sp.sd, "o", color=color, label=f"{label}: fit $\\propto d^{{{sp.slope:.2f}}}$")
        ax.plot(sp.dims, sp.C * sp.dims**sp.slope, "-", color=color, lw=1)
    ax.set(xscale="log", yscale="log", xlabel="input dimension $d$",
           ylabel="s.d. of the residual $f(x') - f_{\\rm lin}(x')$")
    dims = sorted({int(d) for sp in spreads.values() for d in sp.dims})
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.minorticks_off()
    ax.legend(fontsize=9)


def plot_independence(fig: Any, ind: IndependenceSamples, *, threshold: float = 1.5,
                      max_points: int = 3000) -> None:
    """Three panels: ⟨w, u⟩ against g = ⟨w, x⟩ for rows of W (left) and ⟨P⊥w, u⟩ against g
    for rows of W P⊥ (middle), and the histograms of ⟨P⊥w, u⟩ for |g| > threshold and for
    |g| < 1/threshold with the predicted law N(0, sin²θ/d) dashed, beside the histogram of
    ⟨w, u⟩ for |g| > threshold (right)."""
    ax1, ax2, ax3 = fig.subplots(1, 3)
    k = slice(None, max_points)
    lim = 1.05 * float(np.max(np.abs(ind.w_u[k])))
    for ax, y, color, what in ((ax1, ind.w_u, PALETTE["random"], r"\langle w_i, u\rangle"),
                               (ax2, ind.perp_u, PALETTE["gradient"], r"\langle P_\perp w_i, u\rangle")):
        r = float(np.corrcoef(ind.g, y)[0, 1])
        ax.plot(ind.g[k], y[k], ".", ms=2.5, alpha=0.5, color=color)
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
    ax3.plot(grid, np.exp(-grid**2 / (2 * sd**2)) / (sd * math.sqrt(2 * math.pi)), "--",
             color=PALETTE["theory"], label=r"$\mathcal{N}(0, \sin^2\theta/d)$")
    ax3.set_ylim(0, 1.55 * ax3.get_ylim()[1])  # room for the legend above the peak
    ax3.set(xlabel=r"projection on $u$", ylabel="density", title="law given $|g|$ large or small")
    ax3.legend(loc="upper left", fontsize=7.5)
    fig.tight_layout()


def draw_law_frame(fig: Any, results: Mapping[str, OneStepSamples], activation: str,
                   s: float) -> None:
    """One frame of the chapter's interactive figure: for ``activation``, the measured flip
    rates against the predicted law with step ``s`` marked (left), and the joint scatter of
    (f(x), f(x')) at that s (right)."""
    r = results[activation]
    i = r.index(s)
    ax1, ax2 = fig.subplots(1, 2)
    plot_flip_curves(ax1, {activation: r})
    p_hat, p = float(r.flip_rate[i]), float(r.predicted_flip_rate()[i])
    ax1.plot([r.s[i]], [p_hat], "o", ms=11, mfc="none", mec=PALETTE["gradient"], mew=2,
             label=f"s = {r.s[i]:g}: measured {p_hat:.3f}, predicted {p:.3f}")
    ax1.legend(loc="lower right", fontsize=8)
    ax1.set_title(f"{activation}: flip rate of one step")
    plot_joint(ax2, r, i, max_points=1000)
    ax2.set_title(f"{activation}, s = {r.s[i]:g}: $(f(x), f(x'))$")
    fig.tight_layout()

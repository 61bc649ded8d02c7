"""Chapter 2's figures: random vectors, Marchenko–Pastur, norms and gradients of random nets.

* :func:`plot_random_vectors` — angles and lengths of independent Gaussian vectors.
* :func:`plot_mp_histogram` — singular values against the Marchenko–Pastur law.
* :func:`plot_norm_propagation` — norms through random layers.
* :func:`plot_cosine_scaling` — the gradient of random networks against d.
* :func:`plot_isometry_distortion` — how far W^T is from an isometry.

They take the results of :mod:`mini_adv.rmt` and draw on a figure or axes the caller creates.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from mini_adv.figures.style import CYCLE, PALETTE
from mini_adv.rmt import (CosineScaling, GradientStats, cosine_density, length_map,
                          mp_singular_density, norm_density, union_bound_epsilon)
from mini_adv.stats import fit_power_law


def _log_ticks(ax: Axes, values: Sequence[float]) -> None:
    """Label a log x-axis at the measured values only."""
    ax.set_xticks(list(values), [f"{v:g}" for v in values])
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_random_vectors(fig: Figure, samples: Mapping[int, tuple[Any, Any]]
                        ) -> tuple[Axes, Axes]:
    """Draw the angles and lengths of independent Gaussian vectors, one step histogram per d.

    Left panel: histograms of cos∠(g, g'), right panel: histograms of ‖g‖/√d. Each d gets its
    own bins (40 bins over ±6 standard deviations, 1/√d for the cosine and 1/√(2d) for the
    length, clipped to the support), so that every histogram resolves its own peak, and its own
    exact density dashed in the same colour (:func:`~mini_adv.rmt.cosine_density`,
    :func:`~mini_adv.rmt.norm_density`): every histogram lies on its curve, and the curves
    narrow like 1/√d around 0 and 1.

    Args:
        fig: an empty figure; two side-by-side axes are added to it.
        samples: ``{d: (cos, norm)}`` as returned by :func:`~mini_adv.rmt.cosines_and_norms`, in the order
            the curves should be drawn (colours follow :data:`~mini_adv.figures.style.CYCLE`); d ≥ 2.

    Returns:
        The two axes ``(angles, lengths)``.
    """
    ax1, ax2 = fig.subplots(1, 2)
    step = dict(density=True, histtype="step", lw=1.6)
    top1 = top2 = 0.0
    for i, (d, (cos, norm)) in enumerate(samples.items()):
        w1 = min(1.0, 6 / math.sqrt(d))
        ax1.hist(np.asarray(cos), bins=np.linspace(-w1, w1, 41), **step, color=CYCLE[i],
                 label=f"d = {d}")
        t = np.linspace(-w1, w1, 401)
        y = cosine_density(t, d)
        ax1.plot(t, y, "--", lw=1.2, color=CYCLE[i])
        lo, hi = max(0.0, 1 - 6 / math.sqrt(2 * d)), 1 + 6 / math.sqrt(2 * d)
        ax2.hist(np.asarray(norm), bins=np.linspace(lo, hi, 41), **step, color=CYCLE[i],
                 label=f"d = {d}")
        u = np.linspace(lo, hi, 401)
        yn = norm_density(u, d)
        ax2.plot(u, yn, "--", lw=1.2, color=CYCLE[i])
        top1, top2 = max(top1, float(y.max())), max(top2, float(yn.max()))
    for ax in (ax1, ax2):
        ax.plot([], [], "--", color=PALETTE["theory"], label="exact density")
    ax1.set(xlabel=r"$\cos\angle(g, g')$", ylabel="density", xlim=(-1, 1), ylim=(0, 1.15 * top1),
            title="(a) angles between independent vectors")
    ax2.set(xlabel=r"$\|g\|/\sqrt{d}$", ylabel="density", xlim=(0, 2.2), ylim=(0, 1.15 * top2),
            title="(b) lengths")
    ax1.legend(loc="upper left", fontsize=9)
    ax2.legend(loc="upper left", fontsize=9)
    return ax1, ax2


def plot_mp_histogram(ax: Axes, sv: Any, n: int, r: float, *, ymax: float | None = None) -> None:
    """Draw a histogram of s/√n against the Marchenko–Pastur density and its edges 1 ± √r.

    Args:
        ax: the axes to draw on (no title is set: the caller adds one).
        sv: singular values ς_i of Gaussian h × n matrices (the book's G ∈ ℝ^{h×d}, n = d),
            ``(draws, h)`` as returned by :func:`~mini_adv.rmt.gaussian_singular_values`
            (entries N(0, 1)).
        n: the number of columns (the values are divided by √n).
        r: the aspect ratio h/n of the Marchenko–Pastur law (dashed) and of the edges (dotted).
        ymax: upper y-limit; default 1.35 × the maximum of the density on the plotted range.
    """
    sv = np.asarray(sv)
    s = sv.ravel() / math.sqrt(n)
    bins = np.linspace(max(0, 0.9 - math.sqrt(r)), 1.1 + math.sqrt(r), 50)
    ax.hist(s, bins=bins, density=True, alpha=0.6, color=PALETTE["random"],
            label=f"singular values of $G/\\sqrt{{d}}$ ({sv.shape[0]} draws)")
    grid = np.linspace(0, 2.05, 600)
    dens = np.asarray(mp_singular_density(grid, r))
    ax.plot(grid, dens, "--", color=PALETTE["theory"], label="Marchenko–Pastur density")
    for e in (1 - math.sqrt(r), 1 + math.sqrt(r)):
        ax.axvline(e, ls=":", color=PALETTE["gradient"])
    ax.plot([], [], ":", color=PALETTE["gradient"], label=r"edges $1\pm\sqrt{h/d}$")
    top = 1.35 * float(np.max(dens)) if ymax is None else ymax
    ax.set(xlabel=r"singular value $\varsigma/\sqrt{d}$", ylabel="density", xlim=(0, 2.05),
           ylim=(0, top))
    ax.legend(loc="upper right", fontsize=9)


def plot_norm_propagation(fig: Figure, rho: Mapping[int, Any], sd_measured: Any,
                          sd_predicted: Any, variants: Sequence[tuple[str, str | float, str]],
                          variant_rho: Sequence[Any], variant_width: int
                          ) -> tuple[Axes, Axes, Axes]:
    """Draw the three-panel figure of norms through random layers (proposition on He scaling).

    The book's symbols: q_ℓ = ‖z_ℓ‖²/h_ℓ is the mean square per unit of layer ℓ (z_0 = x), and
    the arrays hold ρ_ℓ = √(q_ℓ/q_0) as :func:`~mini_adv.rmt.layer_norms` returns it.

    (a) top, full width: median and 10–90 % band of √(q_ℓ/q_0) (= ‖z_ℓ‖/‖x‖ for equal widths) against the layer ℓ,
    for every other width of ``rho``, with the prediction 1 (dashed);
    (b) bottom left: the measured sd of ρ_L² against the width (log–log, with the fitted
    slope in the legend) and the exact prediction √(∏(1 + 5/h_ℓ) − 1) (dashed);
    (c) bottom right: mean ρ_ℓ for other activations / weight scales (dots) against the
    infinite-width length map (:func:`~mini_adv.rmt.length_map`, dashed).

    Args:
        fig: an empty figure (the book uses ``figsize=(10, 8)``).
        rho: ``{width: (N, L + 1) values of ρ_ℓ}`` for He-ReLU networks (one input each).
        sd_measured, sd_predicted: sd of ρ_L² per width of ``rho``, measured and predicted
            (:func:`~mini_adv.rmt.relu_norm_variance`).
        variants: ``(activation, weight_scale, legend label)`` for panel (c).
        variant_rho: one ``(N, L + 1)`` array of ρ_ℓ per variant, same depth as ``rho``.
        variant_width: the width of the networks in ``variant_rho`` (for the title).

    Returns:
        The axes of panels (a), (b), (c).
    """
    widths = list(rho)
    L = np.asarray(rho[widths[0]]).shape[1] - 1
    grid = fig.add_gridspec(2, 2)
    ax1 = fig.add_subplot(grid[0, :])
    ax2, ax3 = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    layers = np.arange(L + 1)
    for i, w in enumerate(widths[::2]):
        q = np.asarray(rho[w])
        ax1.plot(layers, np.median(q, 0), "o-", color=CYCLE[i], ms=4, label=f"width {w}")
        ax1.fill_between(layers, *np.percentile(q, [10, 90], axis=0), color=CYCLE[i],
                         alpha=0.15)
    ax1.axhline(1, ls="--", color=PALETTE["theory"], label="prediction 1")
    ax1.set(xlabel=r"layer $\ell$", ylabel=r"$\sqrt{q_\ell/q_0}$ $(= \|z_\ell\|/\|x\|)$", ylim=(0, 2),
            title="(a) He-ReLU: median and 10–90 % band")
    W = np.array(widths)
    slope, _ = fit_power_law(W, sd_measured)
    ax2.loglog(W, sd_measured, "o", color=PALETTE["gradient"],
               label=f"measured (fit slope {slope:.2f})")
    ax2.loglog(W, sd_predicted, "--", color=PALETTE["theory"],
               label=r"exact: $\sqrt{\prod_\ell(1 + 5/h) - 1}$")
    ax2.set(xlabel=r"width $h$", ylabel=r"sd of $q_L/q_0$", title=f"(b) fluctuations, L = {L}")
    _log_ticks(ax2, W)
    for i, ((act, scale, name), q) in enumerate(zip(variants, variant_rho)):
        ax3.semilogy(layers, np.asarray(q).mean(0), "o", ms=4, color=CYCLE[i], label=name)
        ax3.semilogy(layers, length_map(act, scale, L), "--", color=CYCLE[i])
    ax3.plot([], [], "--", color=PALETTE["theory"], label=r"length map $\sqrt{q_\ell/q_0}$")
    ax3.set(xlabel=r"layer $\ell$", ylabel=r"mean $\sqrt{q_\ell/q_0}$",
            title=f"(c) other choices, width {variant_width}")
    for ax in (ax1, ax2, ax3):
        ax.legend(loc="best", fontsize=9)
    return ax1, ax2, ax3


def plot_cosine_scaling(fig: Figure, out: CosineScaling, st: GradientStats | None = None
                        ) -> tuple[Axes, Axes, Axes]:
    """Draw the three-panel figure of the gradient of random networks against d.

    (a) top, full width: mean |cos∠(x, ∇f)| = E|f|/(‖∇f‖‖x‖) against d (log–log, ±2 s.e.
    over networks), its power-law fit and the prediction √(2/π) d^(−1/2) (dashed);
    (b) bottom left: histogram of √d cos∠(x, ∇f) at one d against N(0, 1) (dashed);
    (c) bottom right: the coefficient of variation of ‖∇f‖ against d, its fit and a
    slope −1/2 reference (dashed). With a single d the fits are left out.

    Args:
        fig: an empty figure (the book uses ``figsize=(10, 8)``).
        out: the result of :func:`mini_adv.rmt.cosine_scaling`.
        st: the sample for panel (b); default ``out.raw[-1]`` (the largest d).

    Returns:
        The axes of panels (a), (b), (c).
    """
    st = out.raw[-1] if st is None else st
    d_arr = np.asarray(out.d)
    dd = np.geomspace(d_arr.min(), d_arr.max(), 100)
    grid = fig.add_gridspec(2, 2)
    ax1 = fig.add_subplot(grid[0, :])
    ax2, ax3 = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    # (a) the scaling law, with the fit and the prediction
    ax1.errorbar(d_arr, out.mean_abs_cos, yerr=2 * out.se / np.sqrt(d_arr), fmt="o",
                 color=PALETTE["gradient"], capsize=3, label="measured (±2 s.e. over networks)")
    if out.slope is not None:
        fit = f"fit: ${out.constant:.2f}\\,d^{{{out.slope:.3f}}}$"
        ax1.plot(dd, out.constant * dd ** out.slope, "-", alpha=0.6,
                 color=PALETTE["gradient"], label=fit)
    ax1.plot(dd, math.sqrt(2 / math.pi) / np.sqrt(dd), "--", color=PALETTE["theory"],
             label=r"prediction $\sqrt{2/\pi}\,d^{-1/2}$")
    ax1.set(xscale="log", yscale="log", xlabel="input dimension $d$ (= width)",
            ylabel=r"$E\,|f|\,/\,(\|\nabla f\|\,\|x\|)$",
            title="(a) relative linearised distance = |cos|")
    _log_ticks(ax1, d_arr.astype(int))
    # (b) the cosine at one d against N(0, 1)
    z = np.asarray(math.sqrt(st.d) * st.cos).ravel()
    ax2.hist(z, bins=50, density=True, alpha=0.6, color=PALETTE["gradient"],
             label=rf"$\sqrt{{d}}\cos\angle(x, \nabla f)$, d = {st.d}")
    t = np.linspace(-4, 4, 200)
    ax2.plot(t, np.exp(-t**2 / 2) / math.sqrt(2 * math.pi), "--", color=PALETTE["theory"],
             label=r"$\mathcal{N}(0, 1)$")
    ax2.set(xlabel=r"$\sqrt{d}\,\cos\angle(x, \nabla f(x))$", ylabel="density",
            title="(b) the gradient looks random")
    # (c) the coefficient of variation of the gradient norm
    cv = np.asarray(out.grad_norm_cv)
    ax3.loglog(d_arr, cv, "o", color=PALETTE["random"], label="measured")
    if d_arr.size >= 2:
        cv_slope, cv_const = fit_power_law(d_arr, cv)
        ax3.loglog(dd, cv_const * dd ** cv_slope, "-", alpha=0.6, color=PALETTE["random"],
                   label=f"fit: slope {cv_slope:.2f}")
    ax3.loglog(dd, cv[0] * np.sqrt(d_arr[0] / dd), "--", color=PALETTE["theory"],
               label=r"slope $-1/2$")
    ax3.set(xlabel="input dimension $d$ (= width)", ylabel=r"CV of $\|\nabla f(x)\|$",
            title=r"(c) $\|\nabla f\|$ concentrates")
    _log_ticks(ax3, d_arr.astype(int))
    for ax in (ax1, ax2, ax3):
        ax.legend(loc="best", fontsize=9)
    return ax1, ax2, ax3


def plot_isometry_distortion(ax: Axes, ks: Sequence[int], n: int, worst: Sequence[float], *,
                             delta: float = 0.05) -> None:
    """Draw how far W^T (k × n, N(0, 1/n) entries) is from an isometry, against k/n.

    Three curves on log–log axes, with the two different quantities named in the legend: the
    measured worst distortion over all unit vectors ``worst`` (dots), its Marchenko–Pastur
    prediction 2√(k/n) + k/n (dashed), and the tolerance τ at which the union bound over the 2^k
    masked copies Dv of one vector reaches failure probability δ (:func:`~mini_adv.rmt.union_bound_epsilon`, squares;
    shown only where ε < 1), with a grey line at distortion 1.

    Args:
        ax: the axes to draw on.
        ks: the layer widths k (one per point of ``worst``). n: the previous layer's width.
        worst: measured max(s_max² − 1, 1 − s_min²) of W^T, one value per k.
        delta: the failure probability of the union bound.
    """
    q = np.array(ks) / n
    qq = np.geomspace(q.min(), 1, 100)
    eps_ub = np.array([union_bound_epsilon(k, n, delta) for k in ks])
    ok = eps_ub < 1  # the chi-square tail bound needs eps < 1
    ax.loglog(q, worst, "o", color=PALETTE["gradient"],
              label=r"all unit vectors: measured $\max(\varsigma_{\max}^2 - 1,\ 1 - \varsigma_{\min}^2)$")
    ax.loglog(qq, 2 * np.sqrt(qq) + qq, "--", color=PALETTE["theory"],
              label=r"all unit vectors, Marchenko–Pastur: $2\sqrt{h/h'} + h/h'$")
    ax.loglog(q[ok], eps_ub[ok], "s:", lw=2.2, color=PALETTE["random"],
              label=(r"$2^{h}$ masked copies $Dv$ of one $v$: union-bound $\tau$"
                     rf" ($\delta = {100 * delta:g}\%$)"))
    ax.axhline(1, color=PALETTE["muted"], lw=1)
    ax.set(xlabel=r"width ratio $h/h'$ (layer / previous layer)",
           ylabel=r"distortion (worst $|\,\|W^\top v\|^2/\|v\|^2 - 1|$)",
           title=f"How far $W^\\top$ is from an isometry, previous width $h' = {n}$")
    ax.legend(loc="upper left", fontsize=8.5)

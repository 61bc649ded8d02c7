"""Chapter 1's figures and table: planes through x, and the sweep over d.

* :func:`draw_planes` — sign f on planes through 0 and x (gradient and random directions).
* :func:`summary_table`, :func:`plot_sweep` — a :func:`mini_adv.rays.sweep_rays` result
  against the linear model's predictions.

They take the results of :mod:`mini_adv.rays` and draw on a figure the caller creates.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from mini_adv.attacks import ray_flip_kernel
from mini_adv.figures.style import PALETTE
from mini_adv.gradients import flip_direction_from, value_and_input_grad
from mini_adv.nets import Network, as_params
from mini_adv.rays import RaySweep, linear_flip_probability, linear_ratio_median, plane_slice
from mini_adv.validation import check_batch

def draw_planes(fig: Any, net: Network, x: jax.Array, u: jax.Array, *, resolution: int = 121,
                title: str | None = None) -> None:
    """Draw sign f on planes through 0 and x: spanned by (x, ∇f(x)) and by (x, u).

    Three panels: the plane containing the gradient ray (with the ray from x to its first
    sign change), the same plane zoomed in around x (half-width three times the linearised
    distance |f|/(‖∇f‖‖x‖)), and the
    plane containing the random direction ``u``. Coordinates are in units of ‖x‖ (x sits at
    (1, 0)), so distances read off the panels are relative distances ‖δ‖/‖x‖.
    """
    params = as_params(net)
    x = check_batch(params, jnp.asarray(x)[None], "x")[0]
    d = x.shape[-1]
    nx = float(jnp.linalg.norm(x))
    f, g = value_and_input_grad(params, x[None])
    res = ray_flip_kernel(params, x[None], flip_direction_from(f, g), jnp.asarray(2.0 * nx))
    gn = float(jnp.linalg.norm(g[0]))
    lin = abs(float(f[0])) / gn / nx if gn > 0 else 1.0 / math.sqrt(d)
    zoom = min(1.0, max(1e-3, 3.0 * lin))  # the boundary sits about a third of the way out
    panels = ((g[0], (0.0, 2.0, -1.0, 1.0), r"$x$ and $\nabla f(x)$"),
              (g[0], (1 - zoom, 1 + zoom, -zoom, zoom), r"$x$ and $\nabla f(x)$, zoomed in"),
              (u, (0.0, 2.0, -1.0, 1.0), r"$x$ and a random $u$"))
    axes = fig.subplots(1, 3)
    for ax, (v, extent, name) in zip(axes, panels):
        A, B, F = plane_slice(params, x, v, extent=extent, resolution=resolution)
        ax.contourf(A, B, np.sign(F), levels=[-1.5, 0, 1.5],
                    colors=[PALETTE["negative"], PALETTE["positive"]])
        ax.contour(A, B, F, levels=[0.0], colors="black", linewidths=1.2)
        ax.plot([1.0], [0.0], "o", color="black", ms=6, zorder=5)
        ax.set_xlabel(r"along $x$  (units of $\|x\|$)")
        ax.set_title(f"plane of {name}", fontsize=11)
        ax.set_aspect("equal")
        ax.grid(False)
    if bool(res.flipped[0]):
        e1 = x / nx
        w = g[0] - jnp.dot(g[0], e1) * e1
        e2 = w / jnp.linalg.norm(w)
        dx = res.x_adv[0] - x
        tip = (1 + float(jnp.dot(dx, e1)) / nx, float(jnp.dot(dx, e2)) / nx)
        for ax in axes[:2]:
            ax.annotate("", xy=tip, xytext=(1.0, 0.0),
                        arrowprops=dict(arrowstyle="->", color=PALETTE["gradient"], lw=2))
    axes[0].set_ylabel(r"orthogonal component  (units of $\|x\|$)")
    handles = [Patch(color=PALETTE["positive"], label="$f > 0$"),
               Patch(color=PALETTE["negative"], label="$f < 0$"),
               Line2D([], [], color="black", lw=1.2, label="boundary $f = 0$"),
               Line2D([], [], marker="o", color="black", lw=0, label="input $x$"),
               Line2D([], [], color=PALETTE["gradient"], lw=2, label="gradient ray to first flip")]
    fig.legend(handles=handles, loc="lower center", ncol=5, frameon=False)
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.2, top=0.85, wspace=0.3)


def summary_table(out: RaySweep) -> str:
    """A text table of a :func:`~mini_adv.rays.sweep_rays` result, one row per d, with the linear model's row.

    Columns: d; median random/gradient ratio divided by C(κ)√d; fraction of random rays that
    flip within κ‖x‖; fraction of gradient rays that flip; √d · mean gradient distance/‖x‖;
    median gradient-ray distance / linearised distance.
    """
    kappa = out.kappa
    C = linear_ratio_median(kappa)
    lines = ["     d  ratio/(C√d)  P(rand flip)  P(grad flip)  √d·dist/|x|  grad/lin"]
    rows = [(f"{int(d):>6}", out.ratio_median[i] / (C * math.sqrt(d)), out.p_flip_random[i],
             out.p_flip_gradient[i], out.grad_rel_sqrt_d[i], out.grad_over_linear[i])
            for i, d in enumerate(out.d)]
    rows.append(("linear", 1.0, linear_flip_probability(kappa), 1.0, math.sqrt(2 / math.pi), 1.0))
    for name, *vals in rows:
        lines.append(f"{name}  {vals[0]:>11.3f}  {vals[1]:>12.3f}  {vals[2]:>12.3f}"
                     f"  {vals[3]:>11.3f}  {vals[4]:>8.3f}")
    return "\n".join(lines)


def plot_sweep(fig: Any, out: RaySweep) -> None:
    """Three panels of a :func:`~mini_adv.rays.sweep_rays` result against the linear model's predictions.

    (a, top) median random/gradient distance ratio on log-log axes with the fitted slope and
    the prediction C(κ)√d; (b) fraction of rays that flip within κ‖x‖ with arctan(κ)/π;
    (c) √d · mean gradient distance/‖x‖ with ±2 standard errors and √(2/π).
    """
    d = out.d
    kappa = out.kappa
    dd = np.geomspace(d.min(), d.max(), 100)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.15, 1.0])
    ax1 = fig.add_subplot(grid[0, :])
    ax2 = fig.add_subplot(grid[1, 0])
    ax3 = fig.add_subplot(grid[1, 1])
    slope, icpt = np.polyfit(np.log(d), np.log(out.ratio_median), 1)
    ax1.loglog(d, out.ratio_median, "o", color=PALETTE["random"], label="measured (median)")
    ax1.loglog(dd, np.exp(icpt) * dd**slope, "-", color=PALETTE["random"], alpha=0.6,
               label=f"fit: slope {slope:.2f}")
    ax1.loglog(dd, linear_ratio_median(kappa) * np.sqrt(dd), "--", color=PALETTE["theory"],
               label=rf"linear model: ${linear_ratio_median(kappa):.2f}\sqrt{{d}}$")
    ax1.set(xlabel="input dimension $d$", ylabel="random-ray / gradient-ray distance",
            title="(a) how much farther random rays go")
    ax2.semilogx(d, out.p_flip_random, "o-", color=PALETTE["random"], label="random rays")
    ax2.semilogx(d, out.p_flip_gradient, "s-", color=PALETTE["gradient"], label="gradient rays")
    ax2.axhline(linear_flip_probability(kappa), ls="--", color=PALETTE["theory"],
                label=rf"linear model: $\arctan({kappa:g})/\pi$")
    ax2.set(xlabel="input dimension $d$", ylabel=rf"fraction flipped within ${kappa:g}\|x\|$",
            ylim=(0, 1.05), title=rf"(b) how often a ray flips within ${kappa:g}\|x\|$")
    ax3.errorbar(d, out.grad_rel_sqrt_d, yerr=2 * out.grad_rel_sqrt_d_se, fmt="o-",
                 color=PALETTE["gradient"], capsize=3, label="measured (±2 s.e. over networks)")
    ax3.axhline(math.sqrt(2 / math.pi), ls="--", color=PALETTE["theory"],
                label=r"linear model: $\sqrt{2/\pi}$")
    ax3.set_xscale("log")
    ax3.set(xlabel="input dimension $d$", ylabel=r"$\sqrt{d}\,\cdot$ gradient-ray distance $/\,\|x\|$",
            ylim=(0, 1.6), title="(c) the gradient-ray distance")
    for ax in (ax1, ax2, ax3):
        ax.legend(loc="best")
    fig.tight_layout()

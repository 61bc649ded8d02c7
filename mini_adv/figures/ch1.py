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
from matplotlib.ticker import NullFormatter
from matplotlib.patches import Patch, Rectangle

from mini_adv.attacks import ray_flip_kernel
from mini_adv.figures.style import PALETTE, power_law_axes
from mini_adv.gradients import flip_direction_from, value_and_input_grad
from mini_adv.nets import Network, as_params
from mini_adv.rays import RaySweep, linear_flip_probability, linear_ratio_median, plane_slice
from mini_adv.validation import check_batch, check_number

def draw_planes(fig: Any, net: Network, x: jax.Array, u: jax.Array, *, resolution: int = 121,
                zoom: float = 3.0, title: str | None = None) -> None:
    """Draw sign f on planes through 0 and x: spanned by (x, ∇f(x)) and by (x, u).

    Three panels, in coordinates of units of ‖x‖ along e₁ = x/‖x‖ and along e₂, the unit
    part of ∇f(x) (or of u) orthogonal to x, so that x sits at (1, 0):

    * the plane containing the gradient ray, with the region of the middle panel boxed;
    * the same plane around x, *rescaled by √d*: the axes are √d·(a − 1) and √d·b, in units
      of ‖x‖/√d, with half-width ``zoom``. The linearised distance of a random network is
      close in law to ‖x‖|Z|/√d, so in these units the picture does not shrink with d: a
      fixed ``zoom`` gives the same axes in every frame of a slider over d;
    * the plane containing the random direction ``u``, with the ray x + t u, t ∈ [0, 2‖x‖].

    The red arrow runs from x to the first sign change along the gradient ray (found by
    :func:`mini_adv.attacks.ray_flip_kernel` within 2‖x‖); the blue line is the random ray,
    with a dot at its first sign change if it has one within 2‖x‖.

    Args:
        fig: an empty figure. net: one network. x: ``(d,)`` input. u: ``(d,)`` a direction.
        resolution: grid points per axis and panel. zoom: half-width of the middle panel, in
            units of ‖x‖/√d (> 0). title: the figure's title.

    Raises:
        ValueError: for a non-positive ``zoom`` (and what :func:`mini_adv.rays.plane_slice`
            raises).
    """
    params = as_params(net)
    zoom = check_number("zoom", zoom, low=0.0)
    x = check_batch(params, jnp.asarray(x)[None], "x")[0]
    u = check_batch(params, jnp.asarray(u)[None], "u")[0]
    d = x.shape[-1]
    sd = math.sqrt(d)
    nx = float(jnp.linalg.norm(x))
    f, g = value_and_input_grad(params, x[None])
    budget = jnp.asarray(2.0 * nx)
    res = ray_flip_kernel(params, x[None], flip_direction_from(f, g), budget)
    u = u / jnp.linalg.norm(u)
    res_u = ray_flip_kernel(params, x[None], u[None], budget)
    z = zoom / sd  # the middle panel's half-width in units of ‖x‖
    panels = ((g[0], (0.0, 2.0, -1.0, 1.0), r"$x$ and $\nabla f(x)$", 1.0, 0.0),
              (g[0], (1 - z, 1 + z, -z, z), r"$x$ and $\nabla f(x)$, around $x$", sd, 1.0),
              (u, (0.0, 2.0, -1.0, 1.0), r"$x$ and a random $u$", 1.0, 0.0))
    axes = fig.subplots(1, 3)
    for ax, (v, extent, name, scale, shift) in zip(axes, panels):
        A, B, F = plane_slice(params, x, v, extent=extent, resolution=resolution)
        A, B = scale * (A - shift), scale * B
        ax.contourf(A, B, np.sign(F), levels=[-1.5, 0, 1.5],
                    colors=[PALETTE["negative"], PALETTE["positive"]])
        ax.contour(A, B, F, levels=[0.0], colors="black", linewidths=1.2)
        ax.plot([scale * (1.0 - shift)], [0.0], "o", color="black", ms=6, zorder=5)
        ax.set_title(f"plane of {name}", fontsize=11)
        ax.set_aspect("equal")
        ax.grid(False)
    for ax in (axes[0], axes[2]):
        ax.set_xlabel(r"along $x$  (units of $\|x\|$)")
        ax.set_ylabel(r"orthogonal to $x$  (units of $\|x\|$)")
    axes[1].set_xlabel(r"$\sqrt{d}\,\cdot$ offset along $x$  (units of $\|x\|/\sqrt{d}$)")
    axes[1].set_ylabel(r"$\sqrt{d}\,\cdot$ offset orthogonal to $x$")
    axes[1].set(xlim=(-zoom, zoom), ylim=(-zoom, zoom))
    axes[0].add_patch(Rectangle((1 - z, -z), 2 * z, 2 * z, fill=False, lw=1.2,
                                edgecolor=PALETTE["gradient"], zorder=6))
    e1 = x / nx
    if bool(res.flipped[0]):
        w = g[0] - jnp.dot(g[0], e1) * e1
        e2 = w / jnp.linalg.norm(w)
        dx = res.x_adv[0] - x
        tip = (1 + float(jnp.dot(dx, e1)) / nx, float(jnp.dot(dx, e2)) / nx)
        for ax, scale, shift in ((axes[0], 1.0, 0.0), (axes[1], sd, 1.0)):
            ax.annotate("", xy=(scale * (tip[0] - shift), scale * tip[1]),
                        xytext=(scale * (1.0 - shift), 0.0),
                        arrowprops=dict(arrowstyle="->", color=PALETTE["gradient"], lw=2))
    # the random ray x + t u, t ∈ [0, 2‖x‖], lies in the plane of x and u
    w = u - jnp.dot(u, e1) * e1
    e2 = w / jnp.linalg.norm(w)
    ua, ub = float(jnp.dot(u, e1)), float(jnp.dot(u, e2))
    t = np.array([0.0, 2.0])
    axes[2].plot(1 + t * ua, t * ub, "-", color=PALETTE["random"], lw=2, zorder=4)
    if bool(res_u.flipped[0]):
        tu = float(res_u.distance[0]) / nx
        axes[2].plot([1 + tu * ua], [tu * ub], "o", color=PALETTE["random"], ms=6, zorder=5)
    axes[2].set(xlim=(0.0, 2.0), ylim=(-1.0, 1.0))
    axes[0].set(xlim=(0.0, 2.0), ylim=(-1.0, 1.0))
    handles = [Patch(facecolor=PALETTE["positive"], edgecolor="none", label="$f > 0$"),
               Patch(facecolor=PALETTE["negative"], edgecolor="none", label="$f < 0$"),
               Line2D([], [], color="black", lw=1.2, label="boundary $f = 0$"),
               Line2D([], [], marker="o", color="black", lw=0, label="input $x$"),
               Line2D([], [], color=PALETTE["gradient"], lw=2,
                      label="gradient ray to first flip (box: middle panel)"),
               Line2D([], [], color=PALETTE["random"], lw=2, marker="o",
                      label=r"random ray $x + tu$ (dot: first flip)")]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.27, top=0.86, wspace=0.38)


def summary_table(out: RaySweep) -> str:
    """A text table of a :func:`~mini_adv.rays.sweep_rays` result, one row per d, with the linear model's row.

    Columns: d; median random/gradient ratio divided by C(β)√d; fraction of random rays that
    flip within β‖x‖; fraction of gradient rays that flip; √d · mean gradient distance/‖x‖;
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

    (a, top) median random/gradient distance ratio on log-log axes, with a 95 % bootstrap
    interval over networks, the fitted slope and the prediction C(β)√d; (b) fraction of rays that flip within β‖x‖ with arctan(β)/π;
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
    yerr = np.array([out.ratio_median - out.ratio_median_lo, out.ratio_median_hi - out.ratio_median])
    ax1.errorbar(d, out.ratio_median, yerr=np.clip(yerr, 0, None), fmt="o", capsize=3,
                 color=PALETTE["random"], label="measured median (95 % bootstrap over networks)")
    ax1.set(xscale="log", yscale="log")
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
    power_law_axes(ax1, d, y_ticks=[1, 2, 5, 10, 20, 50, 100, 200])
    for ax in (ax2, ax3):
        ax.set_xticks(d, [f"{v:g}" for v in d])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax1.legend(loc="upper left")
    ax2.legend(loc="center right")
    ax3.legend(loc="lower left")
    fig.tight_layout()

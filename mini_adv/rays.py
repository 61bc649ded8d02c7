"""Chapter 1: the linear picture — gradient rays against random rays.

For the linear model f(x) = ⟨w, x⟩ the distance from x to {f = 0} is

    |f(x)| / ‖∇f(x)‖ = ‖x‖ · |cos ∠(x, w)| ≈ ‖x‖ · |Z₀| / √d,       Z₀ ~ N(0, 1),

reached by moving along −sign(f) ∇f. Along a random unit direction u the same boundary is
at distance |f(x)| / |⟨∇f(x), u⟩| = ‖x‖ |Z₀| / |Z| (Z ~ N(0, 1) independent), and only if u
points the right way (probability 1/2). Hence, with a budget of κ‖x‖,

* P(a random ray flips within κ‖x‖) = P(right way) · P(|Z₀|/|Z| ≤ κ) = arctan(κ)/π,
  independent of d (|Z₀|/|Z| is the absolute value of a standard Cauchy variable);
* (random-ray distance)/(gradient-ray distance) = √d / |Z|: it grows like √d, and among
  the rays that flip its median is C(κ)·√d with C(κ) computed by
  :func:`linear_ratio_median`.

:func:`compare_rays` measures the same quantities on random ReLU networks (Daniely &
Shacham 2020: random networks are locally almost linear at this scale), and
:func:`plane_slice` draws f on a 2-D plane through x for the chapter's figures.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mini_adv.attacks import ray_flip_kernel
from mini_adv.data import sphere
from mini_adv.gradients import (flip_direction_from, linearized_distance_from,
                                value_and_input_grad_kernel)
from mini_adv.nets import MLPParams, Network, apply, as_params, check_batch, check_finite, init_params
from mini_adv.runtime import progress


def _check_kappa(kappa: float) -> float:
    if not (isinstance(kappa, (int, float)) and 0 < kappa < math.inf):
        raise ValueError(f"kappa (budget in units of ‖x‖) must be a positive finite number, got {kappa!r}")
    return float(kappa)


def linear_flip_probability(kappa: float) -> float:
    """P(a random ray flips a linear model within κ‖x‖) = arctan(κ)/π (large-d limit)."""
    return math.atan(_check_kappa(kappa)) / math.pi


def linear_ratio_median(kappa: float) -> float:
    """C(κ) with median[(random-ray distance)/(gradient-ray distance) | flip within κ‖x‖] ≈ C(κ)√d.

    For the linear model the ratio is √d/|Z| and the flip condition is |Z₀| ≤ κ|Z|
    (Z, Z₀ independent standard normals), so C(κ) = 1/q with q the median of |Z| under
    the weight P(|Z₀| ≤ κ|Z| | Z) = erf(κ|Z|/√2). Computed by quadrature on [0, 12].
    """
    kappa = _check_kappa(kappa)
    t = np.linspace(0.0, 12.0, 240_001)
    erf = np.vectorize(math.erf)
    density = 2.0 * np.exp(-t**2 / 2) / math.sqrt(2 * math.pi) * erf(kappa * t / math.sqrt(2))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(t))])
    q = float(np.interp(0.5 * cdf[-1], cdf, t))
    return 1.0 / q


@struct.dataclass
class RayComparison:
    """Flip distances of one experiment at one dimension d (N networks, B inputs, R rays).

    Attributes:
        x_norm: ``(N, B)`` ‖x‖.
        linear: ``(N, B)`` |f(x)|/‖∇f(x)‖, the linearised distance (``inf`` if ∇f = 0).
        gradient: ``(N, B)`` flip distance along u = −sign(f)∇f/‖∇f‖ (``inf`` if none).
        random: ``(N, B, R)`` flip distances along random unit rays (``inf`` if none).
        kappa: the budget, in units of ‖x‖.
    """

    x_norm: jax.Array
    linear: jax.Array
    gradient: jax.Array
    random: jax.Array
    kappa: float = struct.field(pytree_node=False, default=2.0)

    @property
    def d(self) -> int:
        """The input dimension (all inputs have ‖x‖ = √d)."""
        return int(round(float(jnp.mean(self.x_norm)) ** 2))

    def summary(self) -> dict[str, float]:
        """Measured statistics next to the linear model's predictions.

        Keys: ``p_flip_random`` (fraction of random rays that flip within κ‖x‖; linear
        prediction arctan κ/π), ``ratio_median`` (median random/gradient distance over the
        random rays that flip; prediction C(κ)√d), ``grad_rel_sqrt_d`` (√d · mean of
        gradient distance/‖x‖; prediction √(2/π); ``grad_rel_sqrt_d_se`` is its standard
        error across networks), ``grad_over_linear`` (median of
        gradient distance / linearised distance; prediction 1), ``p_flip_gradient``
        (fraction of gradient rays that flip; prediction 1).
        """
        rnd = np.asarray(self.random)
        grad = np.asarray(self.gradient)
        flips = np.isfinite(rnd)
        g_ok = np.isfinite(grad)
        with np.errstate(invalid="ignore"):
            ratio = rnd / grad[..., None]
        ok = flips & g_ok[..., None]
        # relative gradient distances (N, B); networks, not inputs, are the independent
        # replicates (inputs on one network are correlated), so the s.e. uses network means
        rel = np.where(g_ok, grad, np.nan) / np.asarray(self.x_norm)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # networks with no flip at all
            per_net = np.nanmean(rel, axis=1)
        per_net = per_net[np.isfinite(per_net)]
        se = (math.sqrt(self.d) * per_net.std(ddof=1) / math.sqrt(per_net.size)
              if per_net.size > 1 else math.inf)
        return {
            "d": float(self.d),
            "p_flip_random": float(flips.mean()),
            "ratio_median": float(np.median(ratio[ok])) if ok.any() else math.inf,
            "grad_rel_sqrt_d": float(math.sqrt(self.d) * np.nanmean(rel)) if g_ok.any() else math.inf,
            "grad_rel_sqrt_d_se": float(se),
            "grad_over_linear": float(np.median(grad[g_ok] / np.asarray(self.linear)[g_ok]))
            if g_ok.any() else math.inf,
            "p_flip_gradient": float(g_ok.mean()),
        }


def _compare_one(params: MLPParams, X: jax.Array, U: jax.Array, max_distance: jax.Array):
    """For one network: linearised, gradient-ray and random-ray distances (pure, jit-able)."""
    f, g = value_and_input_grad_kernel(params, X)
    gn = jnp.linalg.norm(g, axis=-1)
    linear = linearized_distance_from(f, g)
    grad = ray_flip_kernel(params, X, flip_direction_from(f, g), max_distance,
                           f_clean=f, grad_norm=gn).distance
    B, R, d = U.shape
    rnd = ray_flip_kernel(params, jnp.repeat(X, R, axis=0), U.reshape(B * R, d), max_distance,
                          f_clean=jnp.repeat(f, R), grad_norm=jnp.repeat(gn, R))
    return linear, grad, rnd.distance.reshape(B, R)


_compare_many = jax.jit(jax.vmap(_compare_one, in_axes=(0, 0, 0, None)))


def compare_rays(key: jax.Array, d: int, *, hidden: Sequence[float] = (1.0, 1.0),
                 activation: str = "relu", n_networks: int = 8, n_inputs: int = 16,
                 n_rays: int = 8, kappa: float = 2.0) -> RayComparison:
    """Gradient rays against random rays on fresh random networks at dimension ``d``.

    Draws ``n_networks`` independent bias-free He-initialised networks with widths
    ``[d, ⌈m₁d⌉, ⌈m₂d⌉, ...]`` (``hidden`` = (m₁, m₂, ...)), for each ``n_inputs`` fresh
    inputs on the sphere of radius √d and ``n_rays`` random unit directions per input, and
    measures every flip distance within κ‖x‖ with :func:`mini_adv.attacks.ray_flip_kernel`.
    All networks run in one jitted, vmapped call.

    Raises:
        ValueError: for non-positive sizes or multipliers, or a bad ``kappa``.
    """
    kappa = _check_kappa(kappa)
    for name, v in (("d", d), ("n_networks", n_networks), ("n_inputs", n_inputs), ("n_rays", n_rays)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not hidden or any(not (m > 0) for m in hidden):
        raise ValueError(f"hidden must be a non-empty sequence of positive width multipliers, got {hidden!r}")
    widths = [d] + [max(1, math.ceil(m * d)) for m in hidden]
    k_net, k_x, k_u = jax.random.split(key, 3)
    params = init_params(k_net, widths, activation=activation, n=n_networks)
    X = sphere(k_x, n_networks * n_inputs, d).reshape(n_networks, n_inputs, d)
    U = sphere(k_u, n_networks * n_inputs * n_rays, d, radius=1.0).reshape(
        n_networks, n_inputs, n_rays, d)
    linear, grad, rnd = _compare_many(params, X, U, jnp.asarray(kappa * math.sqrt(d)))
    return RayComparison(x_norm=jnp.linalg.norm(X, axis=-1), linear=linear, gradient=grad,
                         random=rnd, kappa=kappa)


def sweep_dimension(key: jax.Array, dims: Sequence[int], **kwargs: Any) -> dict[str, np.ndarray]:
    """Run :func:`compare_rays` for each d in ``dims`` (fresh draws each) and stack the summaries.

    Returns a dict of arrays, one entry per key of :meth:`RayComparison.summary`, plus
    ``"raw"``: the list of :class:`RayComparison` results. Shows a progress bar.
    """
    if not dims:
        raise ValueError("dims must be a non-empty sequence of dimensions")
    results = [compare_rays(k, d, **kwargs)
               for k, d in progress(zip(jax.random.split(key, len(dims)), dims),
                                    desc="dimensions", total=len(dims))]
    summaries = [r.summary() for r in results]
    out: dict[str, Any] = {k: np.array([s[k] for s in summaries]) for k in summaries[0]}
    out["raw"] = results
    return out


def plane_slice(net: Network, x: jax.Array, v: jax.Array, *, extent: tuple[float, float, float, float]
                = (0.0, 2.0, -1.0, 1.0), resolution: int = 121) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """f on the plane through 0 spanned by x and v, in units of ‖x‖.

    The grid point (a, b) is p = ‖x‖ (a e₁ + b e₂) with e₁ = x/‖x‖ and e₂ the unit part of v
    orthogonal to x; the input x itself sits at (1, 0).

    Args:
        net: a network; x: ``(d,)``; v: ``(d,)`` second direction (not parallel to x).
        extent: (a_min, a_max, b_min, b_max).
        resolution: grid points per axis.

    Returns:
        ``(A, B, F)``: coordinate grids and f on them, each ``(resolution, resolution)``.

    Raises:
        ValueError: for shapes that do not match the network, non-finite input, or v
            parallel to x.
    """
    params = as_params(net)
    x, v = jnp.asarray(x), jnp.asarray(v)
    check_batch(params, x[None], "x")
    check_batch(params, v[None], "v")
    nx = jnp.linalg.norm(x)
    e1 = x / nx
    w = v - jnp.dot(v, e1) * e1
    if float(jnp.linalg.norm(w)) <= 1e-6 * float(jnp.linalg.norm(v)):
        raise ValueError("v is parallel to x (or zero): the plane is not defined; pass another direction")
    check_finite("extent", jnp.asarray(extent))
    e2 = w / jnp.linalg.norm(w)
    a = jnp.linspace(extent[0], extent[1], resolution)
    b = jnp.linspace(extent[2], extent[3], resolution)
    A, Bg = jnp.meshgrid(a, b)
    P = nx * (A.reshape(-1, 1) * e1 + Bg.reshape(-1, 1) * e2)
    F = _apply_jit(params, P).reshape(A.shape)
    return np.asarray(A), np.asarray(Bg), np.asarray(F)


_apply_jit = jax.jit(apply)


def draw_planes(fig: Any, net: Network, x: jax.Array, u: jax.Array, *, resolution: int = 121,
                title: str | None = None) -> None:
    """Draw sign f on planes through 0 and x: spanned by (x, ∇f(x)) and by (x, u).

    Three panels: the plane containing the gradient ray (with the ray from x to its first
    sign change), the same plane zoomed in around x (half-width three times the linearised
    distance |f|/(‖∇f‖‖x‖)), and the
    plane containing the random direction ``u``. Coordinates are in units of ‖x‖ (x sits at
    (1, 0)), so distances read off the panels are relative distances ‖δ‖/‖x‖.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from mini_adv.gradients import value_and_input_grad
    from mini_adv.figures.style import PALETTE

    params = as_params(net)
    x = jnp.asarray(x)
    d = x.shape[-1]
    check_batch(params, x[None], "x")
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


def summary_table(out: dict[str, Any]) -> str:
    """A text table of a :func:`sweep_dimension` result, one row per d, with the linear model's row.

    Columns: d; median random/gradient ratio divided by C(κ)√d; fraction of random rays that
    flip within κ‖x‖; fraction of gradient rays that flip; √d · mean gradient distance/‖x‖;
    median gradient-ray distance / linearised distance.
    """
    kappa = out["raw"][0].kappa
    C = linear_ratio_median(kappa)
    lines = ["     d  ratio/(C√d)  P(rand flip)  P(grad flip)  √d·dist/|x|  grad/lin"]
    rows = [(f"{int(d):>6}", out["ratio_median"][i] / (C * math.sqrt(d)), out["p_flip_random"][i],
             out["p_flip_gradient"][i], out["grad_rel_sqrt_d"][i], out["grad_over_linear"][i])
            for i, d in enumerate(out["d"])]
    rows.append(("linear", 1.0, linear_flip_probability(kappa), 1.0, math.sqrt(2 / math.pi), 1.0))
    for name, *vals in rows:
        lines.append(f"{name}  {vals[0]:>11.3f}  {vals[1]:>12.3f}  {vals[2]:>12.3f}"
                     f"  {vals[3]:>11.3f}  {vals[4]:>8.3f}")
    return "\n".join(lines)


def plot_sweep(fig: Any, out: dict[str, Any]) -> None:
    """Three panels of a :func:`sweep_dimension` result against the linear model's predictions.

    (a, top) median random/gradient distance ratio on log-log axes with the fitted slope and
    the prediction C(κ)√d; (b) fraction of rays that flip within κ‖x‖ with arctan(κ)/π;
    (c) √d · mean gradient distance/‖x‖ with ±2 standard errors and √(2/π).
    """
    from mini_adv.figures.style import PALETTE

    d = out["d"]
    kappa = out["raw"][0].kappa
    dd = np.geomspace(d.min(), d.max(), 100)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.15, 1.0])
    ax1 = fig.add_subplot(grid[0, :])
    ax2 = fig.add_subplot(grid[1, 0])
    ax3 = fig.add_subplot(grid[1, 1])
    slope, icpt = np.polyfit(np.log(d), np.log(out["ratio_median"]), 1)
    ax1.loglog(d, out["ratio_median"], "o", color=PALETTE["random"], label="measured (median)")
    ax1.loglog(dd, np.exp(icpt) * dd**slope, "-", color=PALETTE["random"], alpha=0.6,
               label=f"fit: slope {slope:.2f}")
    ax1.loglog(dd, linear_ratio_median(kappa) * np.sqrt(dd), "--", color=PALETTE["theory"],
               label=rf"linear model: ${linear_ratio_median(kappa):.2f}\sqrt{{d}}$")
    ax1.set(xlabel="input dimension $d$", ylabel="random-ray / gradient-ray distance",
            title="(a) how much farther random rays go")
    ax2.semilogx(d, out["p_flip_random"], "o-", color=PALETTE["random"], label="random rays")
    ax2.semilogx(d, out["p_flip_gradient"], "s-", color=PALETTE["gradient"], label="gradient rays")
    ax2.axhline(linear_flip_probability(kappa), ls="--", color=PALETTE["theory"],
                label=rf"linear model: $\arctan({kappa:g})/\pi$")
    ax2.set(xlabel="input dimension $d$", ylabel=rf"fraction flipped within ${kappa:g}\|x\|$",
            ylim=(0, 1.05), title="(b) how often a ray flips at all")
    ax3.errorbar(d, out["grad_rel_sqrt_d"], yerr=2 * out["grad_rel_sqrt_d_se"], fmt="o-",
                 color=PALETTE["gradient"], capsize=3, label="measured (±2 s.e. over networks)")
    ax3.axhline(math.sqrt(2 / math.pi), ls="--", color=PALETTE["theory"],
                label=r"linear model: $\sqrt{2/\pi}$")
    ax3.set_xscale("log")
    ax3.set(xlabel="input dimension $d$", ylabel=r"$\sqrt{d}\,\cdot$ gradient-ray distance $/\,\|x\|$",
            ylim=(0, 1.6), title="(c) the gradient-ray distance")
    for ax in (ax1, ax2, ax3):
        ax.legend(loc="best")
    fig.tight_layout()

"""Chapter 3: the gradient-flow argument of Daniely & Shacham, measured.

Daniely & Shacham (2020) prove that for a random bias-free ReLU network with shrinking
widths d = d₀ ≫ d₁ ≫ ⋯ ≫ d_L, most inputs x have an adversarial example at distance
O(‖x‖/√d), reached by the normalised gradient flow (:func:`mini_adv.attacks.gradient_flow`).
The proof does not give the constant; this module measures it:

* :func:`measure_flow` runs the flow from many inputs on many independent networks at once
  (the attack kernel runs on a stack of networks through
  :func:`mini_adv.parallel.map_networks`) and returns relative
  flip distances ‖δ‖/‖x‖, the linearised prediction |f|/(‖∇f‖‖x‖), path lengths and
  statuses, with every flip re-checked in float64;
* :func:`sweep_dimension` repeats it over d with :func:`shrinking_widths`, and
  :func:`scaling_fit` fits ‖δ‖/‖x‖ ≈ C·d^slope (the theorem: slope −1/2);
* :func:`compare_methods` puts one gradient step, the flow, DeepFool and rays (along ∇f and
  random) side by side on the same draws;
* :func:`draw_flow_plane` draws the flow's path in the plane of x and ∇f(x).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mini_adv.attacks import (AttackResult, Status, deepfool_kernel, gradient_flow_kernel,
                              gradient_flow_path, gradient_flow_path_kernel, gradient_step_kernel,
                              ray_flip_kernel, verify_float64)
from mini_adv.data import _check_size, sphere
from mini_adv.gradients import flip_direction_from, value_and_input_grad_kernel
from mini_adv.nets import MLPParams, Network, as_params, check_batch, init_params
from mini_adv.parallel import map_networks
from mini_adv.rmt import fit_power_law
from mini_adv.runtime import progress

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
"""E|Z| for Z ~ N(0, 1): the predicted limit of √d · E[‖δ‖/‖x‖] for the linearisation."""


def shrinking_widths(d: int, factors: Sequence[int] = (4, 16)) -> list[int]:
    """``[d, d/f₁, d/f₂, …]``: the shrinking widths of Daniely & Shacham's setting.

    Raises:
        ValueError: if d or a factor is not a positive integer, or a width would be < 1.
    """
    _check_size("d", d)
    for f in factors:
        _check_size("every factor", f)
    widths = [d] + [d // f for f in factors]
    if min(widths) < 1:
        raise ValueError(f"d = {d} is too small for factors {list(factors)}: widths {widths}; "
                         f"use d ≥ {max(factors)}")
    return widths


@struct.dataclass
class FlowMeasurement:
    """The normalised gradient flow from ``n`` inputs on each of ``N`` random networks.

    Every array has shape ``(N, n)`` (networks × inputs). Distances are relative to ‖x‖.

    Attributes:
        widths: the networks' widths ``(d, h₁, …)`` (static).
        rel_distance: ‖x_adv − x‖/‖x‖ where the flow flipped the sign, ``inf`` elsewhere.
        rel_linear: the linearised distance |f(x)|/(‖∇f(x)‖‖x‖) (``inf`` where ∇f = 0).
        rel_path: the flow's path length to the crossing, relative to ‖x‖ (0 if none).
        flipped: sign flipped, verified by re-evaluation in float32.
        verified64: the same flip re-checked with the network evaluated in float64.
        status: :class:`~mini_adv.attacks.Status` codes.
        steps: Euler steps taken.
    """

    widths: tuple[int, ...] = struct.field(pytree_node=False)
    rel_distance: np.ndarray
    rel_linear: np.ndarray
    rel_path: np.ndarray
    flipped: np.ndarray
    verified64: np.ndarray
    status: np.ndarray
    steps: np.ndarray

    @property
    def d(self) -> int:
        return self.widths[0]

    @property
    def flip_rate(self) -> float:
        """Fraction of inputs the flow flipped within its budget."""
        return float(np.mean(self.flipped))

    @property
    def all_verified(self) -> bool:
        """True if every claimed flip also holds in float64."""
        return bool(np.all(self.verified64[self.flipped]))

    def network_means(self, what: str = "rel_distance") -> np.ndarray:
        """Per-network mean of ``what`` over its flipped inputs, shape ``(N,)`` (NaN if none flipped).

        Inputs on one network share its randomness, so error bars come from the spread of
        these N independent means, not from all N·n values.
        """
        vals = np.where(self.flipped, getattr(self, what), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a network with no flip gives NaN
            return np.nanmean(vals, axis=1)

    def summary(self) -> dict[str, float]:
        """Means with network-level standard errors; √d-scaled distances."""
        m = self.network_means()
        m = m[np.isfinite(m)]
        rd = math.sqrt(self.d)
        fl = self.flipped
        ratio = self.rel_distance[fl] / self.rel_linear[fl]
        straight = self.rel_path[fl] / self.rel_distance[fl]
        return {
            "d": self.d,
            "sqrt_d_rel_distance": rd * float(np.mean(m)) if m.size else math.nan,
            "sqrt_d_rel_distance_se": rd * float(np.std(m, ddof=1) / math.sqrt(m.size)) if m.size > 1 else math.nan,
            "sqrt_d_rel_linear": rd * float(np.mean(self.rel_linear[np.isfinite(self.rel_linear)])),
            "flow_over_linear_median": float(np.median(ratio)) if fl.any() else math.nan,
            "path_over_distance_median": float(np.median(straight)) if fl.any() else math.nan,
            "path_over_distance_p90": float(np.quantile(straight, 0.9)) if fl.any() else math.nan,
            "flip_rate": self.flip_rate,
            "stuck_rate": float(np.mean(self.status == Status.ZERO_DIRECTION)),
            "flat_rate": float(np.mean((self.status == Status.ZERO_DIRECTION)
                                       | (self.status == Status.ZERO_OUTPUT))),
            "networks_without_flip": float(np.mean(~np.any(self.flipped, axis=1))),
            "median_steps": float(np.median(self.steps)),
        }


def _flow_kernel(max_factor: float) -> Callable[[MLPParams, jax.Array], AttackResult]:
    """The flow kernel on one network with the budget max_factor·‖x‖, with the linearised
    distance and ‖x‖ (run on a stack of networks by :func:`~mini_adv.parallel.map_networks`)."""
    def one(params: MLPParams, X: jax.Array) -> tuple[AttackResult, jax.Array, jax.Array]:
        nx = jnp.linalg.norm(X, axis=-1)
        f, g = value_and_input_grad_kernel(params, X)
        gn = jnp.linalg.norm(g, axis=-1)
        lin = jnp.where(gn > 0, jnp.abs(f) / jnp.where(gn > 0, gn, 1.0), jnp.inf) / nx
        return gradient_flow_kernel(params, X, max_factor * jnp.max(nx)), lin, nx
    return one


_FLOW_KERNELS: dict[float, Callable] = {}


def measure_flow(key: jax.Array, widths: Sequence[int], *, n_networks: int, n_inputs: int,
                 activation: str = "relu", max_factor: float = 2.0) -> FlowMeasurement:
    """Run the normalised gradient flow on ``n_networks`` fresh networks × ``n_inputs`` inputs.

    Each network is drawn with :func:`~mini_adv.nets.init_params` (bias-free, He scale,
    Gaussian mean-zero readout) and gets its own inputs, uniform on the sphere of radius √d
    and independent of the weights (the theorem's setting). All networks run
    :func:`~mini_adv.attacks.gradient_flow_kernel`, with a path budget of ``max_factor``·‖x‖,
    through :func:`~mini_adv.parallel.map_networks` (one vmapped call for small networks,
    else one call per network, by size with the default threshold, which suits the flow;
    sharded over all local devices). Every flip is then re-checked in float64.

    Raises:
        ValueError: for invalid widths, counts or budget.
    """
    _check_size("n_networks", n_networks)
    _check_size("n_inputs", n_inputs)
    if not (isinstance(max_factor, (int, float)) and 0 < max_factor < math.inf):
        raise ValueError(f"max_factor must be a positive finite number, got {max_factor!r}")
    k_net, k_x = jax.random.split(key)
    params = init_params(k_net, widths, activation=activation, n=n_networks)
    d = params.widths[0]
    X = sphere(k_x, n_networks * n_inputs, d).reshape(n_networks, n_inputs, d)
    kernel = _FLOW_KERNELS.setdefault(float(max_factor), _flow_kernel(float(max_factor)))
    res, lin, nx = map_networks(kernel, params, X)
    verified = verify_float64(params, X, res.x_adv)
    nx = np.asarray(nx)
    flipped = np.asarray(res.flipped)
    return FlowMeasurement(
        widths=tuple(params.widths),
        rel_distance=np.where(flipped, np.asarray(res.delta_norm) / nx, np.inf),
        rel_linear=np.asarray(lin), rel_path=np.asarray(res.path_length) / nx,
        flipped=flipped, verified64=np.asarray(verified) & flipped,
        status=np.asarray(res.status), steps=np.asarray(res.steps))


def sweep_dimension(key: jax.Array, dims: Sequence[int], *, n_networks: int | Sequence[int],
                    n_inputs: int, widths: Callable[[int], list[int]] = shrinking_widths,
                    **kwargs: Any) -> list[FlowMeasurement]:
    """:func:`measure_flow` for each d in ``dims`` with ``widths(d)`` (default [d, d/4, d/16]).

    ``n_networks`` may be one count or one per d (fewer networks at the largest d keeps the
    sweep's cost flat). Each d gets an independent key. Shows a progress bar.
    """
    dims = list(dims)
    if not dims:
        raise ValueError("dims is empty; pass at least one dimension")
    counts = [n_networks] * len(dims) if isinstance(n_networks, int) else list(n_networks)
    if len(counts) != len(dims):
        raise ValueError(f"n_networks needs one count per d: {len(dims)} dims, {len(counts)} counts")
    return [measure_flow(jax.random.fold_in(key, d), widths(d), n_networks=n, n_inputs=n_inputs,
                         **kwargs)
            for d, n in progress(list(zip(dims, counts)), desc="flow over d")]


def scaling_fit(sweep: Sequence[FlowMeasurement]) -> dict[str, float]:
    """Fit mean ‖δ‖/‖x‖ ≈ C·d^slope over a :func:`sweep_dimension` result (network-level means)."""
    dims = [m.d for m in sweep]
    means = [float(np.nanmean(m.network_means())) for m in sweep]
    slope, C = fit_power_law(dims, means)
    return {"slope": slope, "C": C, "C_over_sqrt_2_over_pi": C / SQRT_2_OVER_PI}


def plot_scaling(ax: Any, sweep: Sequence[FlowMeasurement]) -> dict[str, float]:
    """Log-log plot of the mean relative flip distance against d with the fitted power law
    and the prediction √(2/π)/√d; returns the fit."""
    from mini_adv.figures.style import PALETTE, power_law_axes

    dims = np.array([m.d for m in sweep], float)
    net_means = [m.network_means() for m in sweep]
    mean = np.array([np.nanmean(v) for v in net_means])
    se = np.array([np.nanstd(v, ddof=1) / math.sqrt(np.sum(np.isfinite(v))) for v in net_means])
    lin = np.array([np.mean(m.rel_linear[np.isfinite(m.rel_linear)]) for m in sweep])
    fit = scaling_fit(sweep)
    ax.errorbar(dims, mean, yerr=2 * se, fmt="o", color=PALETTE["gradient"], capsize=3,
                label=r"gradient flow: mean $\|\delta\|/\|x\|$ ($\pm 2$ s.e., networks)")
    ax.plot(dims, lin, "s", mfc="none", color=PALETTE["random"],
            label=r"linearisation: mean $|f|/(\|\nabla f\|\,\|x\|)$")
    grid = np.geomspace(dims.min() / 1.3, dims.max() * 1.3, 50)
    ax.plot(grid, SQRT_2_OVER_PI / np.sqrt(grid), "--", color=PALETTE["theory"],
            label=r"prediction $\sqrt{2/\pi}\,/\sqrt{d}$")
    ax.set(xlabel="input dimension $d$", ylabel=r"relative flip distance $\|\delta\|/\|x\|$")
    power_law_axes(ax, dims, fit, fit_label=fr"fit: ${fit['C']:.2f}\,d^{{{fit['slope']:.3f}}}$",
                   y_ticks=[0.005, 0.01, 0.02, 0.05, 0.1, 0.2])
    ax.legend(loc="lower left")
    return fit


def plot_breakdown(fig: Any, panels: Sequence[tuple[Sequence[FlowMeasurement], Sequence[float], str, str]]
                   ) -> None:
    """One panel per ``(measurements, xs, xlabel, title)``: against a size parameter, the
    fractions of inputs flipped, of inputs stuck where f ≡ 0 (f(x₀) = 0, or the flow stopped
    at ∇f = 0), and of networks on which no input flipped; one legend below the panels."""
    from mini_adv.figures.style import PALETTE

    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (measurements, xs, xlabel, title) in zip(axes, panels):
        summ = [m.summary() for m in measurements]
        ax.plot(xs, [s["flip_rate"] for s in summ], "o-", color=PALETTE["gradient"],
                label="inputs flipped")
        ax.plot(xs, [s["flat_rate"] for s in summ], "s--", color=PALETTE["muted"],
                label=r"inputs stuck where $f \equiv 0$ ($f(x_0) = 0$ or $\nabla f = 0$ on the way)")
        ax.plot(xs, [s["networks_without_flip"] for s in summ], "^:", color=PALETTE["random"],
                label="networks with no flip at all")
        ax.set(xscale="log", xlabel=xlabel, ylim=(-0.03, 1.03), title=title)
        ax.set_xticks(list(xs), [f"{v:g}" for v in xs])
        ax.minorticks_off()
    axes[0].set_ylabel("fraction")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, fontsize=9)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.22, wspace=0.08)


def breakdown_table(rows: Sequence[tuple[str, FlowMeasurement]]) -> str:
    """A compact text table of :meth:`FlowMeasurement.summary` rows labelled by ``name``."""
    head = f"{'':>8} {'flipped':>8} {'stuck':>7} {'no-flip nets':>13} {'√d·‖δ‖/‖x‖':>11} {'flow/linear':>12}"
    lines = [head]
    for name, m in rows:
        s = m.summary()
        lines.append(f"{name:>8} {s['flip_rate']:8.1%} {s['flat_rate']:7.1%} "
                     f"{s['networks_without_flip']:13.1%} {s['sqrt_d_rel_distance']:11.2f} "
                     f"{s['flow_over_linear_median']:12.3f}")
    return "\n".join(lines)


def compare_methods(key: jax.Array, widths: Sequence[int], *, n_networks: int, n_inputs: int,
                    c_values: Sequence[float] = (1.1, 1.5, 2.0), random_budget: float = 2.0
                    ) -> list[dict[str, Any]]:
    """One gradient step, the flow, DeepFool and rays, on the same networks and inputs.

    Methods (all from :mod:`mini_adv.attacks`, vmapped over ``n_networks`` networks):
    ``gradient_step`` with c ∈ ``c_values``; ``gradient_flow``; ``deepfool``; the first flip
    along the ray −sign(f)∇f; the first flip along a random direction within
    ``random_budget``·‖x‖. For each: the fraction flipped (verified in float64), the median
    of √d·‖δ‖/‖x‖ over flipped inputs, the median of ‖δ‖ divided by the linearised
    distance |f|/‖∇f‖, and the mean number of gradient (or function) evaluations.

    Returns:
        A list of dict rows (method, flip_rate, sqrt_d_rel_median, over_linear_median,
        evaluations, verified).
    """
    _check_size("n_networks", n_networks)
    _check_size("n_inputs", n_inputs)
    k_net, k_x, k_u = jax.random.split(key, 3)
    params = init_params(k_net, widths, n=n_networks)
    d = params.widths[0]
    X = sphere(k_x, n_networks * n_inputs, d).reshape(n_networks, n_inputs, d)
    U = sphere(k_u, n_networks * n_inputs, d, radius=1.0).reshape(X.shape)
    nx = jnp.linalg.norm(X, axis=-1)
    budget = 2.0 * float(jnp.max(nx))
    f, g = jax.vmap(value_and_input_grad_kernel)(params, X)
    gn = jnp.linalg.norm(g, axis=-1)
    lin = jnp.where(gn > 0, jnp.abs(f) / jnp.where(gn > 0, gn, 1.0), jnp.inf)
    methods: list[tuple[str, Callable]] = [
        (f"one step, c = {c:g}", lambda p, X, c=c: gradient_step_kernel(p, X, jnp.asarray(c), adaptive=True))
        for c in c_values]
    methods += [
        ("gradient flow", lambda p, X: gradient_flow_kernel(p, X, jnp.asarray(budget))),
        ("DeepFool", lambda p, X: deepfool_kernel(p, X)),
        ("ray along the gradient",
         lambda p, X: ray_flip_kernel(p, X, flip_direction_from(*value_and_input_grad_kernel(p, X)),
                                      jnp.asarray(budget))),
    ]
    rows = []
    for name, fn in methods:
        res = jax.jit(jax.vmap(fn))(params, X)
        rows.append(_row(name, res, params, X, nx, lin, d))
    rnd = jax.jit(jax.vmap(lambda p, X, U: ray_flip_kernel(p, X, U, random_budget * jnp.max(nx))))(params, X, U)
    rows.append(_row(f"random ray (≤ {random_budget:g}‖x‖)", rnd, params, X, nx, lin, d))
    return rows


def _row(name: str, res: AttackResult, params: MLPParams, X: jax.Array, nx: jax.Array,
         lin: jax.Array, d: int) -> dict[str, Any]:
    flipped = np.asarray(res.flipped)
    ok64 = np.asarray(verify_float64(params, X, res.x_adv))
    rel = np.asarray(res.delta_norm / nx)[flipped]
    over = np.asarray(res.delta_norm / lin)[flipped]
    return {"method": name, "flip_rate": float(flipped.mean()),
            "sqrt_d_rel_median": math.sqrt(d) * float(np.median(rel)) if rel.size else math.inf,
            "over_linear_median": float(np.median(over)) if over.size else math.inf,
            "evaluations": float(np.mean(np.asarray(res.steps))),
            "verified": bool(np.all(ok64[flipped]))}


def methods_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`compare_methods` as a plain-text table."""
    head = f"{'method':26s} {'flipped':>8s} {'√d·‖δ‖/‖x‖':>11s} {'‖δ‖/linear':>11s} {'evals':>7s}  verified"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['method']:26s} {r['flip_rate']:8.1%} {r['sqrt_d_rel_median']:11.3f} "
                     f"{r['over_linear_median']:11.3f} {r['evaluations']:7.1f}  "
                     f"{'yes' if r['verified'] else 'NO'}")
    return "\n".join(lines)


@struct.dataclass
class FlowGradients:
    """The gradient along the flow's path, for the lemmas of the proof (shapes ``(N, n)``).

    Attributes:
        crossed: the path crossed {f = 0} within the recorded steps.
        time: path length T to the first point past the boundary.
        f0_over_g0: |f(x₀)|/‖∇f(x₀)‖, the linearised distance.
        g_min_ratio: min over the path (up to the crossing) of ‖∇f(x(t))‖/‖∇f(x₀)‖.
        bound: |f(x₀)|/g_min, the flow lemma's upper bound on T (up to one Euler step).
    """

    crossed: np.ndarray
    time: np.ndarray
    f0_over_g0: np.ndarray
    g_min_ratio: np.ndarray
    bound: np.ndarray


def gradient_along_flow(key: jax.Array, widths: Sequence[int], *, n_networks: int,
                        n_inputs: int, n_steps: int = 200) -> FlowGradients:
    """Record the flow path (:func:`~mini_adv.attacks.gradient_flow_path`) from many inputs
    on many networks and measure ‖∇f‖ along it, up to the first point past the boundary.

    This checks the two analytic steps of Daniely & Shacham's proof: ‖∇f‖ stays
    bounded below on the path (g_min_ratio of order 1), and the hitting time obeys the flow
    lemma T ≤ |f(x₀)|/g_min (up to the last Euler step, which overshoots by at most its
    length). Vmapped over inputs and networks.
    """
    _check_size("n_networks", n_networks)
    _check_size("n_inputs", n_inputs)
    _check_size("n_steps", n_steps)
    k_net, k_x = jax.random.split(key)
    params = init_params(k_net, widths, n=n_networks)
    d = params.widths[0]
    X = sphere(k_x, n_networks * n_inputs, d).reshape(n_networks, n_inputs, d)

    def one(p: MLPParams, x: jax.Array):
        pts, k = gradient_flow_path_kernel(p, x, n_steps)
        f, g = value_and_input_grad_kernel(p, pts)
        gn = jnp.linalg.norm(g, axis=-1)
        upto = jnp.arange(n_steps + 1) < jnp.where(k >= 0, k, n_steps + 1)  # before the crossing
        seg = jnp.linalg.norm(jnp.diff(pts, axis=0), axis=-1)
        time = jnp.sum(jnp.where(jnp.arange(n_steps) < k, seg, 0.0))
        g_min = jnp.min(jnp.where(upto, gn, jnp.inf))
        return k >= 0, time, jnp.abs(f[0]) / gn[0], g_min / gn[0], jnp.abs(f[0]) / g_min

    out = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0))))(params, X)
    return FlowGradients(*(np.asarray(a) for a in out))


def draw_flow_plane(fig: Any, net: Network, x: jax.Array, *, n_steps: int = 400,
                    resolution: int = 161, with_crossing_plane: bool = False,
                    title: str | None = None) -> dict[str, float]:
    """The flow's path from x drawn in the plane spanned by x and ∇f(x).

    Coordinates (a, b) are the components along e₁ = x/‖x‖ and e₂ (the part of ∇f(x)
    orthogonal to x), shifted so that x sits at (0, 0) and scaled by ‖x‖/√d (so 1 unit is
    the predicted order of the flip distance). The background is sign f on that plane;
    the path is the projection of the Euler path of
    :func:`~mini_adv.attacks.gradient_flow`, which leaves the plane by the amount reported.
    With ``with_crossing_plane`` a second panel shows the plane spanned by x and the
    displacement x(T) − x to the first point past the boundary, which contains that
    point, so there the path ends on the drawn boundary.

    Returns:
        ``{"distance", "path", "off_plane", "crossed"}``: ‖x(T) − x‖, the path length and the
        largest distance of the path from the (x, ∇f) plane, all in units of ‖x‖/√d, and
        1.0 if the path crossed the boundary within ``n_steps`` Euler steps, else 0.0 (then
        the figure marks no crossing, draws only the first panel, and its title says why).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from mini_adv.figures.style import PALETTE
    from mini_adv.rays import plane_slice

    params = as_params(net)
    x = check_batch(params, jnp.asarray(x)[None], "x")[0]
    d = x.shape[0]
    nx = float(jnp.linalg.norm(x))
    unit = nx / math.sqrt(d)
    f0, g0 = value_and_input_grad_kernel(params, x[None])
    pts, k = gradient_flow_path(params, x, n_steps=n_steps)
    end = k if k >= 0 else pts.shape[0] - 1
    path = np.asarray(pts[: end + 1] - x)
    e1 = np.asarray(x) / nx

    def basis(v: np.ndarray) -> np.ndarray:
        w = v - np.dot(v, e1) * e1
        e2 = w / np.linalg.norm(w)
        return e2 if np.dot(path[min(1, end)], e2) >= 0 else -e2  # the flow starts upwards

    planes = [(basis(np.asarray(g0[0])), r"$\nabla f(x)_\perp$", r"plane of $x$ and $\nabla f(x)$")]
    if with_crossing_plane and k > 0:
        planes.append((basis(path[-1]), r"$(x(T) - x)_\perp$", r"plane of $x$ and $x(T) - x$"))
    e2g = planes[0][0]
    off = np.linalg.norm(path - np.outer(path @ e1, e1) - np.outer(path @ e2g, e2g), axis=1)
    lengths = np.linalg.norm(np.diff(path, axis=0), axis=1)
    out = {"distance": float(np.linalg.norm(path[-1])) / unit, "path": float(lengths.sum()) / unit,
           "off_plane": float(off.max()) / unit, "crossed": float(k >= 0)}
    axes = fig.subplots(1, len(planes), squeeze=False)[0]
    for ax, (e2, name, plane) in zip(axes, planes):
        a, b = path @ e1 / unit, path @ e2 / unit
        reach = max(1.5 * float(np.max(np.abs(np.r_[a, b]))), 0.5)
        r = reach * unit / nx
        A, B, F = plane_slice(params, x, jnp.asarray(e2), extent=(1 - r, 1 + r, -r, r),
                              resolution=resolution)  # the same e₁, e₂ as here
        A, B = (A - 1.0) * nx / unit, B * nx / unit
        ax.contourf(A, B, np.sign(F), levels=[-1.5, 0, 1.5],
                    colors=[PALETTE["negative"], PALETTE["positive"]])
        ax.contour(A, B, F, levels=[0.0], colors="black", linewidths=1.2)
        ax.plot(a, b, "-", color=PALETTE["gradient"], lw=2)
        ax.plot([0.0], [0.0], "o", color="black", ms=6, zorder=5)
        if k >= 0:
            ax.plot([a[-1]], [b[-1]], "*", color=PALETTE["gradient"], ms=12, zorder=5)
        ax.set(xlabel=r"along $x$ (units of $\|x\|/\sqrt{d}$)",
               ylabel=f"along {name} (units of " + r"$\|x\|/\sqrt{d}$)", aspect="equal")
        ax.set_title(plane, fontsize=10)
        ax.grid(False)
    handles = [Patch(color=PALETTE["positive"], label="$f > 0$"),
               Patch(color=PALETTE["negative"], label="$f < 0$"),
               Line2D([], [], color="black", lw=1.2, label="$f = 0$ in this plane"),
               Line2D([], [], color=PALETTE["gradient"], lw=2, label="flow path (projected)")]
    axes[0].legend(handles=handles, loc="upper left", fontsize=9)
    if k >= 0:
        what = "‖x(T) − x‖"
    else:  # say why: a region where ∇f = 0 (the flow cannot move on) or too few steps
        g_end = value_and_input_grad_kernel(params, pts[-1][None])[1]
        why = "the flow reached ∇f = 0" if float(jnp.linalg.norm(g_end)) == 0 else f"{n_steps} steps"
        what = f"no crossing ({why}); ‖x(end) − x‖"
    fig.suptitle(title or (f"d = {d}: {what} = {out['distance']:.2f}, path {out['path']:.2f}, "
                           f"off the (x, ∇f) plane ≤ {out['off_plane']:.2f}  (units ‖x‖/√d)"),
                 fontsize=10)
    return out

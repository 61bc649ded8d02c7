"""Chapter 1: the linear picture — gradient rays against random rays.

For the linear model f(x) = ⟨w, x⟩ the distance from x to {f = 0} is

    |f(x)| / ‖∇f(x)‖ = ‖x‖ · |cos ∠(x, w)| ≈ ‖x‖ · |Z₀| / √d,       Z₀ ~ N(0, 1),

reached by moving along −sign(f) ∇f. Along a random unit direction u the same boundary is
at distance |f(x)| / |⟨∇f(x), u⟩| = ‖x‖ |Z₀| / |Z| (Z ~ N(0, 1) independent), and only if u
points the right way (probability 1/2). Hence, with a budget of β‖x‖ (the argument ``kappa``
of the functions below; the book writes β, because κ is its adaptive step factor),

* P(a random ray flips within β‖x‖) = P(right way) · P(|Z₀|/|Z| ≤ β) = arctan(β)/π,
  independent of d (|Z₀|/|Z| is the absolute value of a standard Cauchy variable);
* (random-ray distance)/(gradient-ray distance) = √d / |Z|: it grows like √d, and among
  the rays that flip its median is C(β)·√d with C(β) computed by
  :func:`linear_ratio_median`.

:func:`compare_rays` measures the same quantities on random ReLU networks (Daniely &
Shacham 2020: random networks are locally almost linear at this scale), and
:func:`compare_rays_on` on one given network (chapter 6's trained ones); :func:`sweep_rays`
repeats it over d, :func:`plane_slice` evaluates f on a 2-D plane through x and
:func:`typical_input` picks an input with the median linearised distance for a picture. The
chapter's figures and tables are in :mod:`mini_adv.figures.ch1`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mini_adv.attacks import ray_flip_kernel
from mini_adv.data import sphere, sphere_batches
from mini_adv.gradients import (flip_direction_from, linearized_distance_from,
                                value_and_input_grad_kernel)
from mini_adv.nets import MLPParams, Network, apply, as_params, init_params
from mini_adv.parallel import VMAP_MAX_FLOPS_UNIFORM, map_networks
from mini_adv.runtime import progress
from mini_adv.stats import network_mean
from mini_adv.validation import (check_batch, check_finite, check_key, check_number,
                                 check_params, check_size)


def linear_flip_probability(kappa: float) -> float:
    """P(a random ray flips a linear model within β‖x‖) = arctan(β)/π (large-d limit).

    Args:
        kappa: the budget β > 0, in units of ‖x‖ (Python, NumPy or 0-d JAX number).

    Returns:
        arctan(β)/π, in (0, 1/2).

    Raises:
        ValueError: if β is not a positive finite number.
    """
    return math.atan(check_number("kappa", kappa, low=0.0)) / math.pi


def linear_ratio_median(kappa: float) -> float:
    """C(β) with median[(random-ray distance)/(gradient-ray distance) | flip within β‖x‖] ≈ C(β)√d.

    For the linear model the ratio is √d/|Z| and the flip condition is |Z₀| ≤ β|Z|
    (Z, Z₀ independent standard normals), so C(β) = 1/q with q the median of |Z| under
    the weight P(|Z₀| ≤ β|Z| | Z) = erf(β|Z|/√2). Computed by quadrature on [0, 12].

    Args:
        kappa: the budget β > 0, in units of ‖x‖.

    Returns:
        C(β) as a float.

    Raises:
        ValueError: if β is not a positive finite number.
    """
    kappa = check_number("kappa", kappa, low=0.0)
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
        d: the input dimension (static).
        kappa: the budget, in units of ‖x‖ (static).
    """

    x_norm: jax.Array
    linear: jax.Array
    gradient: jax.Array
    random: jax.Array
    d: int = struct.field(pytree_node=False)
    kappa: float = struct.field(pytree_node=False, default=2.0)

    def summary(self) -> dict[str, float]:
        """Measured statistics next to the linear model's predictions.

        Keys: ``p_flip_random`` (fraction of random rays that flip within β‖x‖; linear
        prediction arctan β/π), ``ratio_median`` (median random/gradient distance over the
        random rays that flip; prediction C(β)√d), ``grad_rel_sqrt_d`` (√d · mean of
        gradient distance/‖x‖; prediction √(2/π); ``grad_rel_sqrt_d_se`` is its standard
        error across networks), ``grad_over_linear`` (median of
        gradient distance / linearised distance; prediction 1), ``p_flip_gradient``
        (fraction of gradient rays that flip; prediction 1); ``d`` (an int). Where no ray
        flipped, the distances are ``inf`` (explicitly: no flip within the budget).

        ``ratio_median_lo``, ``ratio_median_hi``: a 95 % bootstrap interval for
        ``ratio_median``, resampling whole networks (200 resamples, a fixed NumPy seed, so the
        same result gives the same interval).

        ``grad_rel_sqrt_d`` is the mean over networks of the per-network means
        (:func:`mini_adv.stats.network_mean`): networks, not inputs, are the independent
        replicates (inputs on one network are correlated).
        """
        rnd = np.asarray(self.random)
        grad = np.asarray(self.gradient)
        flips = np.isfinite(rnd)
        g_ok = np.isfinite(grad)
        with np.errstate(invalid="ignore"):
            ratio = rnd / grad[..., None]
        ok = flips & g_ok[..., None]
        rel = np.where(g_ok, grad, np.nan) / np.asarray(self.x_norm)  # (N, B)
        if g_ok.any():
            m = network_mean(rel, scale=math.sqrt(self.d))
            grad_rel, grad_se = m.mean, m.se
        else:
            grad_rel, grad_se = math.inf, math.inf
        lo, hi = _bootstrap_median(ratio, ok)
        return {
            "d": int(self.d),
            "p_flip_random": float(flips.mean()),
            "ratio_median": float(np.median(ratio[ok])) if ok.any() else math.inf,
            "ratio_median_lo": lo,
            "ratio_median_hi": hi,
            "grad_rel_sqrt_d": float(grad_rel),
            "grad_rel_sqrt_d_se": float(grad_se),
            "grad_over_linear": float(np.median(grad[g_ok] / np.asarray(self.linear)[g_ok]))
            if g_ok.any() else math.inf,
            "p_flip_gradient": float(g_ok.mean()),
        }


def _bootstrap_median(values: np.ndarray, ok: np.ndarray, *, n_boot: int = 200,
                      seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of median(values[ok]), resampling the first axis (networks)."""
    if not ok.any():
        return math.inf, math.inf
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    meds = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        v = values[idx][ok[idx]]
        if v.size:
            meds.append(np.median(v))
    lo, hi = np.percentile(meds, [2.5, 97.5])
    return float(lo), float(hi)


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


_compare_one_jit = jax.jit(_compare_one)


def compare_rays(key: jax.Array, d: int, *, hidden: Sequence[float] = (1.0, 1.0),
                 activation: str = "relu", n_networks: int = 8, n_inputs: int = 16,
                 n_rays: int = 8, kappa: float = 2.0) -> RayComparison:
    """Gradient rays against random rays on fresh random networks at dimension ``d``.

    Draws ``n_networks`` independent bias-free He-initialised networks with widths
    ``[d, ⌈m₁d⌉, ⌈m₂d⌉, ...]`` (``hidden`` = (m₁, m₂, ...)), for each ``n_inputs`` fresh
    inputs on the sphere of radius √d and ``n_rays`` random unit directions per input, and
    measures every flip distance within β‖x‖ with :func:`mini_adv.attacks.ray_flip_kernel`.
    All networks run through :func:`mini_adv.parallel.map_networks` (compiled once per shape).

    Args:
        key: PRNG key. d: input dimension.
        hidden: width multipliers (m₁, m₂, ...) > 0. activation: activation name.
        n_networks, n_inputs, n_rays: N networks, B inputs per network, R random rays per input.
        kappa: the budget β > 0, in units of ‖x‖.

    Returns:
        A :class:`RayComparison` with arrays ``(N, B)`` and ``(N, B, R)``.

    Raises:
        ValueError: for non-positive sizes or multipliers, a bad ``kappa`` or key.
    """
    check_key(key)
    kappa = check_number("kappa", kappa, low=0.0)
    d = check_size("d", d)
    n_networks, n_inputs = check_size("n_networks", n_networks), check_size("n_inputs", n_inputs)
    n_rays = check_size("n_rays", n_rays)
    try:
        hidden = tuple(check_number("hidden", m, low=0.0) for m in hidden)
    except (TypeError, ValueError):
        hidden = ()
    if not hidden:
        raise ValueError("hidden must be a non-empty sequence of positive width multipliers "
                         "(m₁, m₂, ...)")
    widths = [d] + [max(1, math.ceil(m * d)) for m in hidden]
    k_net, k_x, k_u = jax.random.split(key, 3)
    params = init_params(k_net, widths, activation=activation, n=n_networks)
    X = sphere_batches(k_x, n_networks, n_inputs, d)
    U = sphere(k_u, n_networks * n_inputs * n_rays, d, radius=1.0).reshape(
        n_networks, n_inputs, n_rays, d)
    budget = jnp.full((n_networks,), kappa * math.sqrt(d), dtype=X.dtype)
    linear, grad, rnd = map_networks(_compare_one, params, X, U, budget,
                                     vmap_max_flops=VMAP_MAX_FLOPS_UNIFORM)
    return RayComparison(x_norm=jnp.linalg.norm(X, axis=-1), linear=linear, gradient=grad,
                         random=rnd, d=d, kappa=kappa)


def compare_rays_on(key: jax.Array, net: Network, X: Any, *, n_rays: int = 8,
                    kappa: float = 2.0) -> RayComparison:
    """:func:`compare_rays` for one given network and given inputs (chapter 6's trained nets).

    The same measurement (linearised distance, the gradient ray's and ``n_rays`` random rays'
    first flips within β‖x‖, β = ``kappa``) on ``net`` at the rows of ``X``, with random
    directions drawn from ``key``. The result has N = 1 network, so
    :meth:`RayComparison.summary` compares it with the linear model's predictions exactly as
    for the random networks (its standard errors need N > 1 and come out as NaN).

    Args:
        key: PRNG key of the random directions. net: one network. X: ``(B, d)`` inputs.
        n_rays: random rays per input. kappa: the budget β > 0, in units of ‖x‖ (per input).

    Returns:
        A :class:`RayComparison` with arrays ``(1, B)`` and ``(1, B, R)``.

    Raises:
        ValueError: for a bad key, network or inputs, a non-positive ``n_rays`` or ``kappa``.
    """
    key = check_key(key)
    kappa = check_number("kappa", kappa, low=0.0)
    n_rays = check_size("n_rays", n_rays)
    params = check_params(net)
    X = check_batch(params, X)
    B, d = X.shape
    U = sphere(key, B * n_rays, d, radius=1.0).reshape(B, n_rays, d).astype(X.dtype)
    budget = jnp.asarray(kappa * float(jnp.max(jnp.linalg.norm(X, axis=-1))), X.dtype)
    linear, grad, rnd = _compare_one_jit(params, X, U, budget)
    return RayComparison(x_norm=jnp.linalg.norm(X, axis=-1)[None], linear=linear[None],
                         gradient=grad[None], random=rnd[None], d=d, kappa=kappa)


@dataclasses.dataclass(frozen=True)
class RaySweep:
    """:func:`sweep_rays`: the summaries of :class:`RayComparison` at several d, as arrays.

    Attributes:
        d: ``(D,)`` int dimensions. kappa: the budget, in units of ‖x‖.
        ratio_median, ratio_median_lo, ratio_median_hi, p_flip_random, p_flip_gradient,
        grad_rel_sqrt_d, grad_rel_sqrt_d_se, grad_over_linear: ``(D,)`` the keys of
        :meth:`RayComparison.summary`, one per d.
        raw: the :class:`RayComparison` results, one per d.
    """

    d: np.ndarray
    kappa: float
    ratio_median: np.ndarray
    ratio_median_lo: np.ndarray
    ratio_median_hi: np.ndarray
    p_flip_random: np.ndarray
    p_flip_gradient: np.ndarray
    grad_rel_sqrt_d: np.ndarray
    grad_rel_sqrt_d_se: np.ndarray
    grad_over_linear: np.ndarray
    raw: tuple[RayComparison, ...]


def sweep_rays(key: jax.Array, dims: Sequence[int], **kwargs: Any) -> RaySweep:
    """Run :func:`compare_rays` for each d in ``dims`` and stack the summaries.

    Each d gets its own key ``fold_in(key, d)``, so adding a d leaves the draws of the others
    unchanged. Shows a progress bar.

    Args:
        key: PRNG key. dims: the dimensions d.
        kwargs: passed to :func:`compare_rays`.

    Returns:
        A :class:`RaySweep`.

    Raises:
        ValueError: for an empty ``dims`` (and whatever :func:`compare_rays` raises).
    """
    check_key(key)
    dims = [check_size("d", d) for d in dims]
    if not dims:
        raise ValueError("dims must be a non-empty sequence of dimensions")
    results = tuple(compare_rays(jax.random.fold_in(key, d), d, **kwargs)
                    for d in progress(dims, desc="dimensions"))
    summaries = [r.summary() for r in results]
    cols = {k: np.array([s[k] for s in summaries]) for k in summaries[0]}
    return RaySweep(kappa=results[0].kappa, raw=results, **cols)


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
        ValueError: for shapes that do not match the network, non-finite input, x = 0 (the
            plane through 0 and x is not defined), v parallel to x, or a resolution < 1.
    """
    params = as_params(net)
    resolution = check_size("resolution", resolution)
    x = check_batch(params, jnp.asarray(x)[None], "x")[0]
    v = check_batch(params, jnp.asarray(v)[None], "v")[0]
    nx = jnp.linalg.norm(x)
    if float(nx) == 0.0:
        raise ValueError("x is the zero vector: the plane through 0 and x is not defined, and its "
                         "coordinates are in units of ‖x‖; pass a nonzero x")
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


def typical_input(key: jax.Array, net: Network, d: int, *, n_candidates: int = 31) -> jax.Array:
    """Of ``n_candidates`` fresh inputs on the sphere of radius √d, the one with the median
    linearised relative distance √d · |f(x)| / (‖∇f(x)‖ ‖x‖).

    A single draw of x fluctuates: its linearised distance is close in law to ‖x‖ |Z| / √d
    (Z ~ N(0, 1)), so one picture can show the boundary unusually close or far. The median of
    ``n_candidates`` draws is close to median |Z| ≈ 0.674 (in units of ‖x‖/√d) at every d: the
    interactive figure of chapter 1 shows this input, so that its frames differ by d only.

    Args:
        key: PRNG key. net: one network with input dimension ``d``. d: the input dimension.
        n_candidates: how many inputs to draw (odd, so that the median is one of them).

    Returns:
        ``(d,)`` the median input.

    Raises:
        ValueError: for an even or non-positive ``n_candidates``, a bad key, or a ``d`` that
            does not match the network.
    """
    check_key(key)
    n_candidates = check_size("n_candidates", n_candidates)
    if n_candidates % 2 == 0:
        raise ValueError(f"n_candidates must be odd (the median is then one of the candidates); "
                         f"got {n_candidates}")
    params = as_params(net)
    X = check_batch(params, sphere(key, n_candidates, check_size("d", d)), "X")
    f, g = value_and_input_grad_kernel(params, X)
    rel = jnp.abs(f) / (jnp.linalg.norm(g, axis=-1) * jnp.linalg.norm(X, axis=-1))
    order = np.argsort(np.asarray(rel))
    return X[int(order[n_candidates // 2])]


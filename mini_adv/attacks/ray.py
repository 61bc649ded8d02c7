"""The first sign change of f along a ray (chapter 1): :func:`ray_flip_distance` along given
directions, :func:`gradient_ray_flip` along the gradient, each with its pure kernel."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from mini_adv.attacks._layers import _first_layer, _tail, _tail_value_and_grad, _unit
from mini_adv.attacks._search import (WALK, NONE, _Bracket, _Line, _push_outwards, _root_on_line,
                                      default_budget, rounding_band)
from mini_adv.attacks.result import AttackResult, finalize
from mini_adv.nets import MLPParams, Network, apply
from mini_adv.validation import check_batch, check_float_array, check_number, check_params


@partial(jax.jit, static_argnames=("grid_size", "max_bisection", "grid_chunk"))
def ray_flip_kernel(params: MLPParams, X: jax.Array, U: jax.Array, max_distance: jax.Array,
                    rtol: float = 1e-6, min_fraction: float = 1e-4, grid_size: int = 64,
                    max_bisection: int = 60, f_clean: jax.Array | None = None,
                    grad_norm: jax.Array | None = None, grid_chunk: int = 4) -> AttackResult:
    """Pure kernel of :func:`ray_flip_distance` (no input checks; vmap it over networks).

    Args:
        params: one network. X: ``(B, d)`` inputs (cast to the weights' dtype).
        U: ``(B, d)`` directions (normalised here). max_distance: the budget T.
        rtol, grid_size: as in :func:`ray_flip_distance`; min_fraction: the grid's first
            point as a fraction of T.
        max_bisection: with ``grid_size``, caps the loop at ``grid_size + 2·max_bisection``
            passes (the search shrinks a bracket at least threefold a pass, so the cap is
            never reached in practice).
        f_clean, grad_norm: ``(B,)`` f(x) and ‖∇f(x)‖, when the caller has them already;
            otherwise computed here.
        grid_chunk: points a row evaluated per pass of the root finder.

    Returns:
        :class:`AttackResult`.
    """
    dtype = params.kernels[0].dtype
    X, U = X.astype(dtype), U.astype(dtype)
    U, unorm = _unit(U)
    zA, zD = _first_layer(params, X), U @ params.kernels[0]
    if grad_norm is None:
        f, g1 = _tail_value_and_grad(params, zA)
        grad_norm = jnp.linalg.norm(g1 @ params.kernels[0].T, axis=-1)
        f0 = f if f_clean is None else f_clean
    else:
        f0 = _tail(params, zA) if f_clean is None else f_clean
    return _ray_search(params, X, U, zA, zD, f0, grad_norm, unorm > 0, max_distance, rtol,
                       min_fraction, grid_size, max_bisection, grid_chunk)


def _ray_search(params: MLPParams, X: jax.Array, U: jax.Array, zA: jax.Array, zD: jax.Array,
                f0: jax.Array, gnorm: jax.Array, has_dir: jax.Array, max_distance: jax.Array,
                rtol: float, min_fraction: float, grid_size: int, max_bisection: int,
                grid_chunk: int) -> AttackResult:
    """The ray search of :func:`ray_flip_distance` along unit rows ``U``, given the first
    layer at the start (``zA`` = X K₁ + b₁) and along the ray (``zD`` = U K₁)."""
    s0 = jnp.sign(f0)
    usable = has_dir & (f0 != 0)
    ts = (max_distance * jnp.geomspace(min_fraction, 1.0, grid_size)).astype(X.dtype)

    # 1.–2. Walk a geometric grid t_k (t_0 tiny, t_K = budget) until s₀f is clearly
    # negative (beyond the rounding band), then shrink that bracket to relative width rtol
    xnorm = jnp.linalg.norm(X, axis=-1)
    eps = jnp.finfo(X.dtype).eps
    line = _Line(zA, zD, s0, rounding_band(gnorm, xnorm, eps), rounding_band(gnorm, 1.0, eps))
    zeros = jnp.zeros_like(f0)
    start = _Bracket(lo=zeros, hi=jnp.full_like(f0, ts[-1]), g_lo=jnp.abs(f0) + line.margin0,
                     g_hi=zeros)
    hi, found, n_line = _root_on_line(params, line, start, jnp.where(usable, WALK, NONE), ts,
                                      eps * xnorm, rtol, grid_size + 2 * max_bisection,
                                      grid_chunk)
    # 3. Verify on the returned array: the network itself, evaluated there (a crossing that
    # the input space does not confirm moves outwards until it does).
    f_end = apply(params, X + hi[:, None] * U)
    hi, f_end = _push_outwards(params, X, U, hi, f_end, f0, found & (f_end * f0 >= 0),
                               max_distance, jnp.maximum(rtol * hi, eps * xnorm))
    x_end = X + hi[:, None] * U
    ok = found & (f_end * f0 < 0)
    return finalize(params, X, jnp.where(ok[:, None], x_end, X), f0, usable, ~has_dir,
                    steps=n_line + 1, f_adv=jnp.where(ok, f_end, f0))


def _search_settings(max_distance: object, rtol: object, grid_size: object
                     ) -> tuple[float, float, int]:
    return (check_number("max_distance", max_distance, low=0.0),
            check_number("rtol", rtol, low=0.0, high=1.0, strict_high=True),
            check_number("grid_size", grid_size, integer=True, low=2, strict_low=False))


def ray_flip_distance(net: Network, X: jax.Array, directions: jax.Array, *,
                      max_distance: float, rtol: float = 1e-6, grid_size: int = 64
                      ) -> AttackResult:
    """Distance to the first sign change of f along each ray t ↦ x + t u, 0 < t ≤ max_distance.

        t*(x, u) = inf{ t ∈ (0, T] : f(x) · f(x + t u/‖u‖) < 0 }

    Algorithm: walk a geometric grid t_k = T · r^{k−K} (r > 1, from 10⁻⁴T to T) until the
    sign changes, which brackets the first crossing (up to crossings closer than one grid
    step), then shrink the bracket by a safeguarded secant search to width
    max(``rtol``·t*, eps·‖x‖) (relative to the crossing itself, however close to x it
    lies, down to the float resolution of the points): f is piecewise linear along the
    ray, so the secant point is usually exact and the search ends after one or two
    batched passes of four points (``benchmarks/run.py`` measures it;
    :func:`~mini_adv.attacks._search._root_on_line`). Points on the ray are evaluated from
    the first layer's line z₁(x) + t·(uK₁), so that each costs only the layers after the
    first. A sign change counts only beyond the rounding band
    (:func:`~mini_adv.attacks._search.rounding_band`): f(x + tu) must have the opposite
    sign of f(x) with |f| > 4·eps·‖∇f(x)‖·(‖x‖ + t), so t* is the first such point, about
    4·eps·‖x‖ beyond the first sign change of f itself. ``x_adv`` is the far end of the
    final bracket, re-evaluated on the returned array; where that re-evaluation disagrees
    (f steeper at the crossing than at x, a rare case) the point moves outwards in doubling
    steps from the target width until it agrees, so every reported flip is a sign change
    of the network itself at the returned point.

    This is the measurement behind chapter 1: along the gradient direction the distance is
    about |f(x)|/‖∇f(x)‖ ≈ ‖x‖/√d, along a random direction it is √d times larger or
    infinite (Daniely & Shacham 2020; Bubeck et al. 2021).

    Jit-safe in ``X`` and ``directions`` (the value checks are skipped under a trace); the
    settings must be concrete numbers.

    Args:
        net: one network, a :class:`~mini_adv.nets.RandomMLP` or
            :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs (cast to the weights' dtype).
        directions: ``(B, d)`` ray directions (normalised here). A zero row is reported with
            status ``ZERO_DIRECTION``.
        max_distance: the budget T > 0.
        rtol: width of the final bracket relative to its far end, in (0, 1).
        grid_size: number of grid points K ≥ 2 of the bracketing walk.

    Returns:
        :class:`AttackResult`; ``result.distance`` is t* where flipped and ``inf`` where the
        ray does not change sign within T.

    Raises:
        ValueError: for a stack of networks or weights with NaN/inf; shape mismatches,
            integer or complex dtypes, NaN/inf in ``X`` or ``directions``; a non-positive or
            non-finite ``max_distance``, ``rtol`` outside (0, 1) or ``grid_size`` < 2.
    """
    params = check_params(net)
    X = check_batch(params, X)
    U = check_float_array("directions", directions, X.dtype)
    if U.shape != X.shape:
        raise ValueError(f"directions must have the shape of X {tuple(X.shape)}; got {tuple(U.shape)}")
    max_distance, rtol, grid_size = _search_settings(max_distance, rtol, grid_size)
    return ray_flip_kernel(params, X, U, jnp.asarray(max_distance, X.dtype), rtol=rtol,
                           grid_size=grid_size)


@partial(jax.jit, static_argnames=("grid_size", "max_bisection", "grid_chunk"))
def gradient_ray_flip_kernel(params: MLPParams, X: jax.Array, max_distance: jax.Array,
                             rtol: float = 1e-6, grid_size: int = 64, max_bisection: int = 60,
                             grid_chunk: int = 4) -> AttackResult:
    """Pure kernel of :func:`gradient_ray_flip` (no input checks; vmap it over networks).

    One forward and backward pass give f(x) and ∇f(x) = g₁ K₁ᵀ; the ray's image in the
    first layer, u K₁ = −sign(f) ∇f K₁/‖∇f‖, costs one more d·h₁ product, and then every
    point on the ray costs only the layers after the first. The arguments are those of
    :func:`ray_flip_kernel`; returns an :class:`AttackResult`.
    """
    X = X.astype(params.kernels[0].dtype)
    z = _first_layer(params, X)
    f0, g1 = _tail_value_and_grad(params, z)
    G = g1 @ params.kernels[0].T
    gn = jnp.linalg.norm(G, axis=-1)
    has_dir = gn > 0
    U = jnp.where(has_dir, -jnp.sign(f0) / jnp.where(has_dir, gn, 1.0), 0.0)[:, None] * G
    return _ray_search(params, X, U, z, U @ params.kernels[0], f0, gn, has_dir, max_distance,
                       rtol, 1e-4, grid_size, max_bisection, grid_chunk)


def gradient_ray_flip(net: Network, X: jax.Array, *, max_distance: float | None = None,
                      rtol: float = 1e-6, grid_size: int = 64) -> AttackResult:
    """One gradient evaluation, then the exact first flip along the gradient ray.

        t*(x) = inf{ t ∈ (0, T] : f(x) · f(x − t sign(f(x)) ∇f(x)/‖∇f(x)‖) < 0 }

    The same search as :func:`ray_flip_distance` with the direction u = −sign(f)∇f/‖∇f‖
    (:func:`~mini_adv.gradients.flip_direction`), in one kernel: where a single adaptive
    :func:`~mini_adv.attacks.gradient_step` guesses t ≈ |f|/‖∇f‖, this finds the first sign
    change along the same ray to relative accuracy ``rtol``. Chapter 1 predicts
    t* ≈ |f|/‖∇f‖ ≈ ‖x‖/√d for random networks (Bartlett, Bubeck & Cherapanamjeri 2021).

    Jit-safe in ``X`` (with the default budget or a concrete one).

    Args:
        net: one network, a :class:`~mini_adv.nets.RandomMLP` or
            :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs (cast to the weights' dtype).
        max_distance: the budget T > 0 (default: :func:`~mini_adv.attacks.default_budget`,
            twice the largest ‖x‖ in the batch).
        rtol: width of the final bracket relative to its far end, in (0, 1).
        grid_size: number of grid points K ≥ 2 of the bracketing walk.

    Returns:
        :class:`AttackResult` as :func:`ray_flip_distance` returns it; rows with ∇f(x) = 0
        have status ``ZERO_DIRECTION``.

    Raises:
        ValueError: for a stack of networks or weights with NaN/inf; a shape mismatch,
            integer or complex dtypes, non-finite inputs; a non-positive budget, ``rtol``
            outside (0, 1) or ``grid_size`` < 2.
    """
    params = check_params(net)
    X = check_batch(params, X)
    if max_distance is None:
        budget = default_budget(X)
        _, rtol, grid_size = _search_settings(1.0, rtol, grid_size)
    else:
        max_distance, rtol, grid_size = _search_settings(max_distance, rtol, grid_size)
        budget = jnp.asarray(max_distance, X.dtype)
    return gradient_ray_flip_kernel(params, X, budget, rtol=rtol, grid_size=grid_size)

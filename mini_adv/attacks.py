"""Attacks: ways of moving x to the other side of the decision boundary {f = 0}.

Every attack takes a network (a :class:`~mini_adv.nets.RandomMLP` or its pure form
:class:`~mini_adv.nets.MLPParams`) and a batch ``X`` of shape ``(B, d)``, runs as one jitted
kernel with its loops inside ``lax.while_loop``, and returns an :class:`AttackResult`.
A flip is counted only when the network, re-evaluated at ``x_adv``, has the opposite sign:
f(x) · f(x_adv) < 0. Points where nothing can be done are reported by :class:`Status`,
never as successes and never as NaN.

This module starts with :func:`ray_flip_distance` (chapter 1); the gradient-based attacks of
chapter 3 build on the same result type.
"""

from __future__ import annotations

import enum
from functools import partial

import jax
import jax.numpy as jnp
from flax import struct

from mini_adv.nets import MLPParams, Network, apply, as_params, check_batch, check_finite


class Status(enum.IntEnum):
    """Outcome of an attack for one input (stored per row in ``AttackResult.status``)."""

    FLIPPED = 0
    """f(x_adv) has the opposite sign of f(x) (verified by re-evaluation)."""
    NO_FLIP = 1
    """No sign change within the budget (distance, steps)."""
    ZERO_DIRECTION = 2
    """Nothing to follow: the direction is zero (e.g. ∇f(x) = 0, a dead network)."""
    ZERO_OUTPUT = 3
    """f(x) = 0 exactly: x is on the boundary and has no sign to flip."""


@struct.dataclass
class AttackResult:
    """Per-input outcome of an attack; every field has leading axis B.

    Attributes:
        x_adv: ``(B, d)`` the perturbed inputs (equal to ``x`` where nothing was found).
        delta_norm: ``(B,)`` ‖x_adv − x‖, measured on the returned points.
        flipped: ``(B,)`` bool, f(x) · f(x_adv) < 0 re-evaluated at ``x_adv``.
        f_clean: ``(B,)`` f(x).
        f_adv: ``(B,)`` f(x_adv).
        status: ``(B,)`` int, a :class:`Status` code.
    """

    x_adv: jax.Array
    delta_norm: jax.Array
    flipped: jax.Array
    f_clean: jax.Array
    f_adv: jax.Array
    status: jax.Array

    @property
    def distance(self) -> jax.Array:
        """‖x_adv − x‖ where flipped, ``inf`` elsewhere (the flip distance, unbounded if none)."""
        return jnp.where(self.flipped, self.delta_norm, jnp.inf)

    def counts(self) -> dict[str, int]:
        """How many inputs ended in each :class:`Status` (a plain dict, for reports)."""
        return {s.name: int(jnp.sum(self.status == s)) for s in Status}


def finalize(params: MLPParams, X: jax.Array, x_adv: jax.Array, f_clean: jax.Array,
             usable: jax.Array, no_direction: jax.Array) -> AttackResult:
    """Re-evaluate f at ``x_adv`` and build the verified :class:`AttackResult` (jit-able).

    ``usable`` marks rows the attack could work on; ``no_direction`` rows with nothing to
    follow. ``flipped`` comes from re-evaluation only, never from the attack's own claim.
    """
    f_adv = apply(params, x_adv)
    flipped = (f_clean * f_adv < 0) & usable
    status = jnp.where(
        flipped, Status.FLIPPED,
        jnp.where(f_clean == 0, Status.ZERO_OUTPUT,
                  jnp.where(no_direction, Status.ZERO_DIRECTION, Status.NO_FLIP)))
    return AttackResult(x_adv=x_adv, delta_norm=jnp.linalg.norm(x_adv - X, axis=-1),
                        flipped=flipped, f_clean=f_clean, f_adv=f_adv,
                        status=status.astype(jnp.int32))


@partial(jax.jit, static_argnames=("grid_size", "max_bisection"))
def ray_flip_kernel(params: MLPParams, X: jax.Array, U: jax.Array, max_distance: jax.Array,
                    rtol: float = 1e-6, min_fraction: float = 1e-4, grid_size: int = 64,
                    max_bisection: int = 60, f_clean: jax.Array | None = None,
                    grad_norm: jax.Array | None = None) -> AttackResult:
    """Pure kernel of :func:`ray_flip_distance` (no input checks; vmap it over networks).

    ``f_clean`` (B,) and ``grad_norm`` (B,) = ‖∇f(x)‖ may be passed when the caller has them
    already; otherwise they are computed here.
    """
    f0 = apply(params, X) if f_clean is None else f_clean
    unorm = jnp.linalg.norm(U, axis=-1)
    has_dir = unorm > 0
    U = U / jnp.where(has_dir, unorm, 1.0)[:, None]
    usable = has_dir & (f0 != 0)
    B = X.shape[0]
    ts = max_distance * jnp.geomspace(min_fraction, 1.0, grid_size)

    def opposite(t: jax.Array) -> jax.Array:  # (B,) distances -> is f(x + t u) of opposite sign?
        return apply(params, X + t[:, None] * U) * f0 < 0

    # 1. Bracket: walk a geometric grid t_k until the sign changes (t_0 tiny, t_K = budget).
    def bracket_cond(state):
        k, _, _, found = state
        return (k < grid_size) & jnp.any(usable & ~found)

    def bracket_body(state):
        k, lo, hi, found = state
        t = jnp.full((B,), ts[k])
        new = opposite(t) & usable & ~found
        return k + 1, jnp.where(found | new, lo, t), jnp.where(new, t, hi), found | new

    zeros = jnp.zeros((B,), X.dtype)
    _, lo, hi, found = jax.lax.while_loop(
        bracket_cond, bracket_body, (0, zeros, jnp.full((B,), max_distance, X.dtype),
                                     jnp.zeros((B,), bool)))

    # 2. Bisect [lo, hi]: f(x + lo u) has the sign of f(x), f(x + hi u) the opposite one.
    def bisect_cond(state):
        i, lo, hi = state
        return (i < max_bisection) & jnp.any(found & (hi - lo > rtol * hi))

    def bisect_body(state):
        i, lo, hi = state
        mid = 0.5 * (lo + hi)
        opp = opposite(mid)
        return i + 1, jnp.where(found & ~opp, mid, lo), jnp.where(found & opp, mid, hi)

    _, lo, hi = jax.lax.while_loop(bisect_cond, bisect_body, (0, lo, hi))

    # 3. Confirm on the returned point itself, with a margin above rounding noise. Within a
    #    few ulps of the boundary the sign of f is noise: two compilations of f (jit, eager,
    #    another batch size) can disagree there by up to about eps·‖∇f(x)‖·‖x‖. So x_adv is
    #    pushed outwards (doubling steps) until |f(x_adv)| ≥ 4·eps·‖∇f(x)‖·‖x_adv‖ with the
    #    opposite sign, never past the budget; a row that cannot be confirmed is no flip.
    eps = jnp.finfo(X.dtype).eps
    gnorm = (jnp.linalg.norm(jax.vmap(jax.grad(lambda x: apply(params, x)))(X), axis=-1)
             if grad_norm is None else grad_norm)
    xnorm = jnp.linalg.norm(X, axis=-1)
    step0 = jnp.maximum(hi - lo, 4 * eps * (xnorm + hi))

    def confirm_state(i, hi):
        x_adv = jnp.where(found[:, None], X + hi[:, None] * U, X)
        f_adv = apply(params, x_adv)
        margin = 4 * eps * gnorm * (xnorm + hi)
        return i, hi, x_adv, (f_adv * f0 < 0) & (jnp.abs(f_adv) >= margin)

    def confirm_cond(state):
        i, hi, _, ok = state
        return (i < 48) & jnp.any(found & ~ok & (hi < max_distance))

    def confirm_body(state):
        i, hi, _, ok = state
        push = found & ~ok & (hi < max_distance)
        return confirm_state(i + 1, jnp.where(push, jnp.minimum(hi + step0 * 2.0**i, max_distance), hi))

    _, hi, x_adv, ok = jax.lax.while_loop(confirm_cond, confirm_body, confirm_state(0, hi))
    x_adv = jnp.where((found & ok)[:, None], x_adv, X)
    return finalize(params, X, x_adv, f0, usable, ~has_dir)


def ray_flip_distance(net: Network, X: jax.Array, directions: jax.Array, *,
                      max_distance: float, rtol: float = 1e-6, grid_size: int = 64
                      ) -> AttackResult:
    """Distance to the first sign change of f along each ray t ↦ x + t u, 0 < t ≤ max_distance.

        t*(x, u) = inf{ t ∈ (0, T] : f(x) · f(x + t u/‖u‖) < 0 }

    Algorithm: walk a geometric grid t_k = T · r^{k−K} (r > 1, from 10⁻⁴T to T) until the
    sign changes, which brackets the first crossing (up to crossings closer than one grid
    step), then bisect the bracket to relative width ``rtol``. ``x_adv`` is the end of the
    bracket on the far side, confirmed on the returned array with |f(x_adv)| above a
    rounding-noise margin 4·eps·‖∇f(x)‖·‖x_adv‖ (pushed outwards if needed, by about
    eps·‖x‖), so every reported flip is a sign change that any re-evaluation reproduces.

    This is the measurement behind chapter 1: along the gradient direction the distance is
    about |f(x)|/‖∇f(x)‖ ≈ ‖x‖/√d, along a random direction it is √d times larger or
    infinite (Daniely & Shacham 2020; Bubeck et al. 2021).

    Args:
        net: a :class:`~mini_adv.nets.RandomMLP` or :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs.
        directions: ``(B, d)`` ray directions (normalised here). A zero row is reported with
            status ``ZERO_DIRECTION``.
        max_distance: the budget T > 0.
        rtol: relative width of the final bracket.
        grid_size: number of grid points K ≥ 2 of the bracketing walk.

    Returns:
        :class:`AttackResult`; ``result.distance`` is t* where flipped and ``inf`` where the
        ray does not change sign within T.

    Raises:
        ValueError: for shape mismatches, NaN/inf in ``X`` or ``directions``, a non-positive
            or non-finite ``max_distance``, ``rtol`` outside (0, 1) or ``grid_size`` < 2.
    """
    params = as_params(net)
    X = check_batch(params, X)
    U = jnp.asarray(directions)
    if U.shape != X.shape:
        raise ValueError(f"directions must have the shape of X {tuple(X.shape)}; got {tuple(U.shape)}")
    check_finite("directions", U)
    if not (isinstance(max_distance, (int, float)) and 0 < max_distance < float("inf")):
        raise ValueError(f"max_distance must be a positive finite number, got {max_distance!r}")
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must lie in (0, 1), got {rtol!r}")
    if not isinstance(grid_size, int) or grid_size < 2:
        raise ValueError(f"grid_size must be an integer ≥ 2, got {grid_size!r}")
    return ray_flip_kernel(params, X, U, jnp.asarray(max_distance, X.dtype), rtol=rtol,
                           grid_size=grid_size)

"""The result of every attack: :class:`Status`, :class:`AttackResult`, :func:`finalize`, and
the independent float64 re-check :func:`verify_float64`.

A flip is counted only when the network, re-evaluated at ``x_adv``, has the opposite sign:
f(x) · f(x_adv) < 0. Points where nothing can be done are reported by :class:`Status`,
never as successes and never as NaN.
"""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp
from flax import struct

from mini_adv.nets import MLPParams, Network, apply, as_params


class Status(enum.IntEnum):
    """Outcome of an attack for one input (stored per row in ``AttackResult.status``)."""

    FLIPPED = 0
    """f(x_adv) has the opposite sign of f(x) (verified by re-evaluation)."""
    NO_FLIP = 1
    """No sign change within the budget (distance, steps)."""
    ZERO_DIRECTION = 2
    """Nothing to follow: the direction is zero (e.g. ∇f = 0, a dead network or dead region)."""
    ZERO_OUTPUT = 3
    """f(x) = 0 exactly: x is on the boundary and has no sign to flip."""


@struct.dataclass
class AttackResult:
    """Per-input outcome of an attack; every field has leading axis B.

    Attributes:
        x_adv: ``(B, d)`` the perturbed inputs (equal to ``x`` where nothing was found,
            except for :func:`gradient_step` and :func:`pgd_l2`, which return their
            iterate whether it flips or not).
        delta_norm: ``(B,)`` ‖x_adv − x‖, measured on the returned points.
        flipped: ``(B,)`` bool, f(x) · f(x_adv) < 0 re-evaluated at ``x_adv``.
        f_clean: ``(B,)`` f(x).
        f_adv: ``(B,)`` f(x_adv).
        status: ``(B,)`` int, a :class:`Status` code.
        path_length: ``(B,)`` length of the path the attack travelled to ``x_adv`` (equals
            ``delta_norm`` for straight-line attacks; longer for a curved flow).
        steps: ``(B,)`` int, iterations of the attack's main loop spent on this row
            (gradient evaluations for the gradient methods, function evaluations along the
            ray for :func:`ray_flip_distance`).
    """

    x_adv: jax.Array
    delta_norm: jax.Array
    flipped: jax.Array
    f_clean: jax.Array
    f_adv: jax.Array
    status: jax.Array
    path_length: jax.Array
    steps: jax.Array

    @property
    def distance(self) -> jax.Array:
        """‖x_adv − x‖ where flipped, ``inf`` elsewhere (the flip distance, unbounded if none)."""
        return jnp.where(self.flipped, self.delta_norm, jnp.inf)

    @property
    def success_rate(self) -> float:
        """Fraction of inputs whose sign was flipped (verified)."""
        return float(jnp.mean(self.flipped))

    def counts(self) -> dict[str, int]:
        """How many inputs ended in each :class:`Status` (a plain dict, for reports)."""
        return {s.name: int(jnp.sum(self.status == s)) for s in Status}


def finalize(params: MLPParams, X: jax.Array, x_adv: jax.Array, f_clean: jax.Array,
             usable: jax.Array, no_direction: jax.Array, path_length: jax.Array | None = None,
             steps: jax.Array | None = None, f_adv: jax.Array | None = None) -> AttackResult:
    """Re-evaluate f at ``x_adv`` and build the verified :class:`AttackResult` (jit-able).

    ``usable`` marks rows the attack could work on; ``no_direction`` rows with nothing to
    follow. ``flipped`` comes from re-evaluation only, never from the attack's own claim:
    ``f_adv`` may be passed only when the caller has evaluated the network
    (:func:`~mini_adv.nets.apply`) at ``x_adv`` itself (f(x) where x_adv = x), to save a pass.
    ``path_length`` defaults to ‖x_adv − x‖ and ``steps`` to 1.
    """
    if f_adv is None:
        f_adv = apply(params, x_adv)
    flipped = (f_clean * f_adv < 0) & usable
    status = jnp.where(
        flipped, Status.FLIPPED,
        jnp.where(f_clean == 0, Status.ZERO_OUTPUT,
                  jnp.where(no_direction, Status.ZERO_DIRECTION, Status.NO_FLIP)))
    delta_norm = jnp.linalg.norm(x_adv - X, axis=-1)
    return AttackResult(
        x_adv=x_adv, delta_norm=delta_norm, flipped=flipped, f_clean=f_clean, f_adv=f_adv,
        status=status.astype(jnp.int32),
        path_length=delta_norm if path_length is None else path_length,
        steps=(jnp.ones(X.shape[0], jnp.int32) if steps is None else steps.astype(jnp.int32)))


def verify_float64(net: Network, X: jax.Array, x_adv: jax.Array) -> jax.Array:
    """Re-check flips in float64: f(x) · f(x_adv) < 0 with the network evaluated in float64.

    An independent check of an attack's float32 claim (the inputs and weights are cast to
    float64, so this is the sign of the exact network at the returned float32 points, up
    to float64 rounding). Not jit-safe: it switches JAX to float64 for the evaluation.

    Args:
        net: one network, or a stack of N networks (``init_params(..., n=N)``).
        X: ``(B, d)`` clean inputs (``(N, B, d)`` for a stack).
        x_adv: the attack's points, of the shape of ``X``.

    Returns:
        A bool array of shape ``X.shape[:-1]``: whether the float64 network flips.
    """
    from mini_adv.runtime import float64

    params = as_params(net)
    with float64():
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        X64, A64 = jnp.asarray(X, jnp.float64), jnp.asarray(x_adv, jnp.float64)
        f = apply if params.num_networks is None else jax.vmap(apply)
        return jnp.asarray(f(p64, X64) * f(p64, A64) < 0)

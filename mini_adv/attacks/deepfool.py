"""Binary ℓ2 DeepFool (Moosavi-Dezfooli et al. 2016), a baseline: :func:`deepfool` and its kernel."""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mini_adv.attacks._layers import _Chart, _chart_start, _tail_value_and_grad
from mini_adv.attacks.result import AttackResult, finalize
from mini_adv.nets import MLPParams, Network, apply
from mini_adv.validation import check_batch, check_number, check_params


class _DeepFoolState(NamedTuple):
    k: jax.Array          # the iteration (0: the evaluation at the input)
    r_tot: jax.Array      # (B, m) Σ r_j in chart coordinates
    s_tot: jax.Array      # (B, h₁) Σ r_j K₁, its move of the first layer
    f0: jax.Array         # (B,) f(x₀)
    gn0: jax.Array        # (B,) ‖∇f(x₀)‖
    active: jax.Array     # (B,) still iterating
    stuck: jax.Array      # (B,) ∇f vanished on the way
    steps: jax.Array      # (B,) iterations taken


def _deepfool_iteration(params: MLPParams, chart: _Chart, zX: jax.Array, scale: float,
                        max_iter: int, stability: float, st: _DeepFoolState) -> _DeepFoolState:
    """Evaluate f and ∇f at x_k, stop the rows that flipped, add r_k to the others."""
    first = st.k == 0
    f, g1 = _tail_value_and_grad(params, zX + scale * st.s_tot)
    v, u, gn = chart.direction(g1)
    f0 = jnp.where(first, f, st.f0)
    s0 = jnp.sign(f0)
    dead = st.active & (f * s0 >= 0) & (gn == 0)
    active = jnp.where(first, (gn > 0) & (f != 0), st.active & (f * s0 >= 0) & ~dead)
    active = active & (st.k < max_iter)
    # r = −sign(f₀)(|f|/‖∇f‖ + stability) ∇f/‖∇f‖
    safe = jnp.where(gn > 0, gn, 1.0)
    c = jnp.where(active, -s0 * (jnp.abs(f) / safe + stability) / safe, 0.0)
    return _DeepFoolState(k=st.k + 1, r_tot=st.r_tot + c[:, None] * v,
                          s_tot=st.s_tot + c[:, None] * u, f0=f0,
                          gn0=jnp.where(first, gn, st.gn0), active=active,
                          stuck=st.stuck | dead, steps=st.steps + active)


@partial(jax.jit, static_argnames=("max_iter",))
def deepfool_kernel(params: MLPParams, X: jax.Array, overshoot: float = 0.02,
                    max_iter: int = 50, stability: float = 1e-4) -> AttackResult:
    """Pure kernel of :func:`deepfool` (no input checks; vmap it over networks).

    The iterates are carried in the coordinates of :class:`~mini_adv.attacks._layers._Chart`:
    an iteration costs one pass through the layers after the first, forward and backward,
    plus h₁² (or 2·d·h₁) multiply-adds a row for the first layer; the final point is formed
    in input space once and re-evaluated there.

    Args:
        params: one network. X: ``(B, d)`` inputs (cast to the weights' dtype).
        overshoot: the factor 1 + overshoot on the accumulated step. max_iter: the most
            iterations (static). stability: foolbox's 10⁻⁴ added to |f|/‖∇f‖.

    Returns:
        :class:`AttackResult`.
    """
    X, chart, zX, zeros, false = _chart_start(params, X)
    B = X.shape[0]
    scale = 1.0 + overshoot
    init = _DeepFoolState(k=jnp.asarray(0), r_tot=jnp.zeros((B, chart.size), X.dtype),
                          s_tot=jnp.zeros_like(zX), f0=zeros, gn0=zeros, active=false,
                          stuck=false, steps=jnp.zeros((B,), jnp.int32))
    # x_k = X + (1 + overshoot) Σ_{j<k} r_j (k = 0: the input)
    st = jax.lax.while_loop(
        lambda st: (st.k == 0) | ((st.k <= max_iter) & jnp.any(st.active)),
        lambda st: _deepfool_iteration(params, chart, zX, scale, max_iter, stability, st), init)
    x = X + scale * chart.lift(st.r_tot)
    f_x = apply(params, x)
    flipped = f_x * st.f0 < 0
    return finalize(params, X, jnp.where(flipped[:, None], x, X), st.f0,
                    (st.gn0 > 0) & (st.f0 != 0), ~(st.gn0 > 0) | st.stuck, steps=st.steps,
                    f_adv=jnp.where(flipped, f_x, st.f0))


def deepfool(net: Network, X: jax.Array, *, overshoot: float = 0.02,
             max_iter: int = 50) -> AttackResult:
    """Binary ℓ2 DeepFool (Moosavi-Dezfooli, Fawzi & Frossard 2016), as foolbox 3 runs it.

        r_k = −sign(f(x₀)) (|f(x_k)|/‖∇f(x_k)‖ + 10⁻⁴) ∇f(x_k)/‖∇f(x_k)‖
        x_{k+1} = x₀ + (1 + overshoot) Σ_{j≤k} r_j,

    repeated until f(x_{k+1}) has the opposite sign of f(x₀) or ``max_iter`` iterations.
    Each r_k is the step onto the zero set of the linearisation at x_k (plus foolbox's
    10⁻⁴ for numerical stability, ``stability`` of :func:`deepfool_kernel`); the overshoot
    pushes the last iterate across. On a linear model it stops after one iteration at
    distance (1 + overshoot)(|f|/‖∇f‖ + 10⁻⁴): it is *nearly*, not exactly, minimal. A
    practical baseline for chapter 3's comparison.

    Jit-safe in ``X``; the settings must be concrete numbers.

    Args:
        net: one network, a :class:`~mini_adv.nets.RandomMLP` or
            :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs (cast to the weights' dtype).
        overshoot: ≥ 0, the factor 1 + overshoot on the accumulated step.
        max_iter: ≥ 1, the most linearise-and-step iterations.

    Returns:
        :class:`AttackResult`; rows that did not flip within ``max_iter`` are returned at
        x with status ``NO_FLIP`` (``ZERO_DIRECTION`` if ∇f vanished on the way).

    Raises:
        ValueError: for a stack of networks or weights with NaN/inf; a shape mismatch,
            integer or complex dtypes, non-finite inputs; a negative overshoot or a
            non-positive ``max_iter``.
    """
    overshoot = check_number("overshoot", overshoot, low=0.0, strict_low=False)
    max_iter = check_number("max_iter", max_iter, integer=True, low=0)
    params = check_params(net)
    X = check_batch(params, X)
    return deepfool_kernel(params, X, overshoot=overshoot, max_iter=max_iter)

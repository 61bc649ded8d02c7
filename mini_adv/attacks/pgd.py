"""ℓ2 projected gradient ascent (Madry et al. 2018), a baseline: :func:`pgd_l2` and its kernel."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from mini_adv.attacks._layers import _unit
from mini_adv.attacks.result import AttackResult, finalize
from mini_adv.gradients import value_and_input_grad_kernel
from mini_adv.nets import MLPParams, Network
from mini_adv.validation import check_batch, check_number, check_params


@partial(jax.jit, static_argnames=("steps",))
def pgd_l2_kernel(params: MLPParams, X: jax.Array, eps: jax.Array, steps: int,
                  step_size: jax.Array) -> AttackResult:
    """Pure kernel of :func:`pgd_l2` (no input checks; vmap it over networks).

    Args:
        params: one network. X: ``(B, d)`` inputs (cast to the weights' dtype).
        eps: the radius ε. steps: the number of steps (static). step_size: η.

    Returns:
        :class:`AttackResult`.
    """
    X = X.astype(params.kernels[0].dtype)
    f0, G0 = value_and_input_grad_kernel(params, X)
    s0 = jnp.sign(f0)
    gn0 = jnp.linalg.norm(G0, axis=-1)
    usable = (gn0 > 0) & (f0 != 0)

    def body(carry, _):
        x, length = carry
        _, G = value_and_input_grad_kernel(params, x)
        D, _ = _unit(G)
        y = x - (s0 * step_size)[:, None] * D                  # ascend the margin −sign(f₀)·f
        delta = y - X
        n = jnp.linalg.norm(delta, axis=-1, keepdims=True)
        y = X + delta * jnp.minimum(1.0, eps / jnp.where(n > 0, n, 1.0))  # project on the ball
        y = jnp.where(usable[:, None], y, x)
        return (y, length + jnp.linalg.norm(y - x, axis=-1)), None

    (x, path), _ = jax.lax.scan(body, (X, jnp.zeros(X.shape[0], X.dtype)), None, length=steps)
    return finalize(params, X, x, f0, usable, ~(gn0 > 0), path_length=path,
                    steps=jnp.full((X.shape[0],), steps))


def pgd_l2(net: Network, X: jax.Array, *, eps: float, steps: int = 50,
           step_size: float | None = None) -> AttackResult:
    """ℓ2 projected gradient ascent on the margin −sign(f(x₀))·f (Madry et al. 2018).

        x_{k+1} = x₀ + Π_ε( x_k − η · sign(f(x₀)) ∇f(x_k)/‖∇f(x_k)‖ − x₀ ),
        Π_ε(δ) = δ · min(1, ε/‖δ‖),

    from x_0 = x₀ (no random start), for ``steps`` steps of length η = ``step_size``
    (default 2.5 ε/steps, Madry et al.'s rule). The attack answers "is there a flip
    within radius ε?" rather than "how far is the boundary?": its ‖δ‖ is usually ε.
    ``x_adv`` is the last iterate, flipped or not.

    Jit-safe in ``X``; the settings must be concrete numbers.

    Args:
        net: one network, a :class:`~mini_adv.nets.RandomMLP` or
            :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs (cast to the weights' dtype).
        eps: radius ε > 0 of the ℓ2 ball.
        steps: number of steps ≥ 1.
        step_size: η > 0.

    Returns:
        :class:`AttackResult`; ``path_length`` is the length of the projected path walked
        (at most ``steps · η``).

    Raises:
        ValueError: for a stack of networks or weights with NaN/inf; a shape mismatch,
            integer or complex dtypes, non-finite inputs; non-positive budgets.
    """
    eps = check_number("eps", eps, low=0.0)
    steps = check_number("steps", steps, integer=True, low=0)
    step_size = check_number("step_size", 2.5 * eps / steps if step_size is None else step_size,
                             low=0.0)
    params = check_params(net)
    X = check_batch(params, X)
    return pgd_l2_kernel(params, X, jnp.asarray(eps, X.dtype), steps,
                         jnp.asarray(step_size, X.dtype))

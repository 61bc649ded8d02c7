"""One step along the input gradient (chapters 3 and 4): :func:`gradient_step` and its kernel."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from mini_adv.attacks.result import AttackResult, finalize
from mini_adv.gradients import value_and_input_grad_kernel
from mini_adv.nets import MLPParams, Network
from mini_adv.validation import check_batch, check_number, check_params


@partial(jax.jit, static_argnames=("adaptive",))
def gradient_step_kernel(params: MLPParams, X: jax.Array, size: jax.Array, *,
                         adaptive: bool, f_clean: jax.Array | None = None,
                         grad: jax.Array | None = None) -> AttackResult:
    """Pure kernel of :func:`gradient_step` (no value checks; vmap it over networks).

    Args:
        params: one network. X: ``(B, d)`` inputs (cast to the weights' dtype).
        size: c (``adaptive=True``) or s (``adaptive=False``).
        f_clean, grad: ``(B,)`` f(X) and ``(B, d)`` ∇f(X), when the caller has them already
            (both or neither); otherwise computed here.

    Returns:
        :class:`AttackResult`.

    Raises:
        ValueError: if exactly one of ``f_clean`` and ``grad`` is given (at trace time).
    """
    if (f_clean is None) != (grad is None):
        raise ValueError("pass both f_clean and grad (the values and gradients at X), or neither")
    X = X.astype(params.kernels[0].dtype)
    f0, G = value_and_input_grad_kernel(params, X) if grad is None else (f_clean, grad)
    gn2 = jnp.sum(G * G, axis=-1)
    has_dir = gn2 > 0
    usable = has_dir & (f0 != 0)
    coef = (size * f0 / jnp.where(has_dir, gn2, 1.0)) if adaptive else size * jnp.sign(f0)
    x_adv = X - jnp.where(usable, coef, 0.0)[:, None] * G
    return finalize(params, X, x_adv, f0, usable, ~has_dir)


def gradient_step(net: Network, X: jax.Array, *, c: float | None = None,
                  s: float | None = None) -> AttackResult:
    """One step along the input gradient (Bubeck et al. 2021; Montanari & Wu 2022).

        adaptive:  x' = x − c · f(x) ∇f(x) / ‖∇f(x)‖²      (‖x' − x‖ = c·|f(x)|/‖∇f(x)‖)
        fixed:     x' = x − s · sign(f(x)) ∇f(x)             (‖x' − x‖ = s·‖∇f(x)‖)

    For a linear f the adaptive step gives f(x') = (1 − c) f(x): c = 1 lands on the boundary
    and any c ∈ (1, 2] flips the sign. For a random network that is nearly linear on the
    scale ‖x‖/√d, c slightly above 1 flips most inputs (chapter 3). The fixed form is
    Montanari & Wu's step s(x) = sign(f(x))·s_d, whose flip probability chapter 4 predicts.

    Jit-safe in ``X``; ``c`` and ``s`` must be concrete numbers.

    Args:
        net: one network, a :class:`~mini_adv.nets.RandomMLP` or
            :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs (cast to the weights' dtype).
        c: adaptive step factor, c > 0 (exactly one of ``c`` and ``s``).
        s: fixed step size, s > 0.

    Returns:
        :class:`AttackResult`; ``flipped`` is verified by re-evaluating the network at x'.
        Rows with ∇f(x) = 0 stay at x with status ``ZERO_DIRECTION``, rows with f(x) = 0
        with ``ZERO_OUTPUT``; ``x_adv`` is the step's end point whether it flips or not.

    Raises:
        ValueError: for a stack of networks or weights with NaN/inf; a shape mismatch,
            integer or complex dtypes, non-finite inputs; c and s both or neither given, or a
            non-positive step.
    """
    if (c is None) == (s is None):
        raise ValueError("give exactly one of c (adaptive step x − c·f∇f/‖∇f‖²) and "
                         "s (fixed step x − s·sign(f)∇f)")
    name, size = ("c", c) if c is not None else ("s", s)
    size = check_number(name, size, low=0.0)
    params = check_params(net)
    X = check_batch(params, X)
    return gradient_step_kernel(params, X, jnp.asarray(size, X.dtype), adaptive=c is not None)

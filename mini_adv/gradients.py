"""Input gradients, Euler's identity and the linearised distance to the boundary.

For a scalar network f and an input x:

* ∇f(x) is the gradient with respect to the *input* (not the weights);
* the linearised distance to the decision boundary {f = 0} is |f(x)| / ‖∇f(x)‖ — exact for
  a linear f, and the first-order estimate for any differentiable f;
* a bias-free ReLU network is positively 1-homogeneous, f(t x) = t f(x) for t > 0, so by
  Euler's identity f(x) = ⟨∇f(x), x⟩ wherever f is differentiable. Hence
  |f(x)| / (‖∇f(x)‖ ‖x‖) = |cos ∠(x, ∇f(x))|: the relative distance is a cosine
  (Daniely & Shacham 2020; Bartlett, Bubeck & Cherapanamjeri 2021).

Each kernel is a pure jitted function of ``(params, X)``, vectorised over the batch with
``jax.vmap``; the public wrappers accept a module or its pure form and check their input.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mini_adv.nets import MLPParams, Network, apply, as_params, check_batch


@jax.jit
def value_and_input_grad_kernel(params: MLPParams, X: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(f(x_b), ∇_x f(x_b))`` for every row of ``X``: shapes ``(B,)`` and ``(B, d)``."""
    return jax.vmap(jax.value_and_grad(lambda x: apply(params, x)))(X)


def value_and_input_grad(net: Network, X: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Values and input gradients in one jitted call.

    Args:
        net: a :class:`~mini_adv.nets.RandomMLP` or :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs.

    Returns:
        ``f`` of shape ``(B,)`` and ``∇f`` of shape ``(B, d)``.

    Raises:
        ValueError: for a wrong shape or non-finite inputs.
    """
    params = as_params(net)
    return value_and_input_grad_kernel(params, check_batch(params, X))


def euler_residual(net: Network, X: jax.Array) -> jax.Array:
    """Per-example residual of Euler's identity, r(x) = f(x) − ⟨∇f(x), x⟩, shape ``(B,)``.

    Zero (up to rounding) for positively 1-homogeneous networks: bias-free with ReLU, |·| or
    the identity. Biases, or activations such as tanh, make it non-zero.
    """
    params = as_params(net)
    X = check_batch(params, X)
    f, g = value_and_input_grad_kernel(params, X)
    return f - jnp.sum(g * X, axis=-1)


def linearized_distance(net: Network, X: jax.Array) -> jax.Array:
    """|f(x)| / ‖∇f(x)‖ for every row: the distance to the boundary of the linearisation.

    Returns ``inf`` where ∇f(x) = 0 (the linearisation never reaches the boundary; a dead
    network gives this everywhere), never NaN. Shape ``(B,)``.
    """
    return linearized_distance_from(*value_and_input_grad(net, X))


def linearized_distance_from(f: jax.Array, g: jax.Array) -> jax.Array:
    """|f|/‖g‖ (``inf`` where g = 0) from precomputed values ``f (B,)`` and gradients ``g (B, d)`` (jit-able)."""
    gn = jnp.linalg.norm(g, axis=-1)
    return jnp.where(gn > 0, jnp.abs(f) / jnp.where(gn > 0, gn, 1.0), jnp.inf)


def flip_direction(net: Network, X: jax.Array) -> jax.Array:
    """Unit vectors u(x) = −sign(f(x)) ∇f(x) / ‖∇f(x)‖: the direction that moves f towards 0.

    Rows where ∇f(x) = 0 or f(x) = 0 are returned as zero vectors (no direction exists);
    :func:`mini_adv.attacks.ray_flip_distance` reports those rows with status
    ``ZERO_DIRECTION``/``ZERO_OUTPUT`` rather than as flips. Shape ``(B, d)``.
    """
    f, g = value_and_input_grad(net, X)
    return flip_direction_from(f, g)


def flip_direction_from(f: jax.Array, g: jax.Array) -> jax.Array:
    """−sign(f) g/‖g‖ from precomputed values ``f (B,)`` and gradients ``g (B, d)`` (jit-able)."""
    gn = jnp.linalg.norm(g, axis=-1, keepdims=True)
    return jnp.where(gn > 0, -jnp.sign(f)[:, None] * g / jnp.where(gn > 0, gn, 1.0), 0.0)

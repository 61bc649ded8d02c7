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
``jax.vmap``; the public wrappers accept a module or its pure form (one network) and check
their input with :func:`mini_adv.validation.check_params` and
:func:`mini_adv.validation.check_batch` (inputs are cast to the weights' dtype). The formulas
on precomputed values, :func:`linearized_distance_from` and :func:`flip_direction_from`, are
the package's one definition of each: other modules call them rather than re-typing them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mini_adv.nets import MLPParams, Network, apply
from mini_adv.validation import check_batch, check_params


@jax.jit
def value_and_input_grad_kernel(params: MLPParams, X: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(f(x_b), ∇_x f(x_b))`` for every row of ``X (B, d)``: shapes ``(B,)`` and ``(B, d)``.

    Pure and jitted, no value checks (use :func:`value_and_input_grad` for checked input).
    """
    return jax.vmap(jax.value_and_grad(lambda x: apply(params, x)))(X)


def value_and_input_grad(net: Network, X: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Values and input gradients in one jitted call.

    Args:
        net: one network, a :class:`~mini_adv.nets.RandomMLP` or
            :class:`~mini_adv.nets.MLPParams` (float32 or float64 weights).
        X: ``(B, d)`` floating inputs, cast to the weights' dtype.

    Returns:
        ``f`` of shape ``(B,)`` and ``∇f`` of shape ``(B, d)``, in the weights' dtype.

    Raises:
        ValueError: for a stack of networks, weights that are not float32/float64 or hold
            NaN/inf, an input of the wrong shape, B = 0, an integer/boolean/complex dtype, or
            NaN/inf inputs.
    """
    params = check_params(net)
    return value_and_input_grad_kernel(params, check_batch(params, X))


def euler_residual(net: Network, X: jax.Array) -> jax.Array:
    """Per-example residual of Euler's identity, r(x) = f(x) − ⟨∇f(x), x⟩.

    Zero (up to rounding) for positively 1-homogeneous networks: bias-free with ReLU, |·| or
    the identity. Biases, or activations such as tanh, make it non-zero.

    Args:
        net: one network. X: ``(B, d)`` floating inputs.

    Returns:
        r of shape ``(B,)``, in the weights' dtype.

    Raises:
        ValueError: as :func:`value_and_input_grad`.
    """
    params = check_params(net)
    X = check_batch(params, X)
    f, g = value_and_input_grad_kernel(params, X)
    return f - jnp.sum(g * X, axis=-1)


def linearized_distance(net: Network, X: jax.Array) -> jax.Array:
    """|f(x)| / ‖∇f(x)‖ for every row: the distance to the boundary of the linearisation.

    :func:`linearized_distance_from` applied to :func:`value_and_input_grad`.

    Args:
        net: one network. X: ``(B, d)`` floating inputs.

    Returns:
        Shape ``(B,)``; ``inf`` where ∇f(x) = 0 (the linearisation never reaches the
        boundary; a dead network gives this everywhere), never NaN.

    Raises:
        ValueError: as :func:`value_and_input_grad`.
    """
    return linearized_distance_from(*value_and_input_grad(net, X))


def _check_values_and_grads(f: jax.Array, g: jax.Array, caller: str) -> None:
    if f.ndim != 1 or g.ndim != 2 or g.shape[0] != f.shape[0]:
        raise ValueError(f"{caller} takes values f of shape (B,) and gradients g of shape "
                         f"(B, d); got {tuple(f.shape)} and {tuple(g.shape)}")


def linearized_distance_from(f: jax.Array, g: jax.Array) -> jax.Array:
    """The linearised distance from precomputed values and gradients: |f| / ‖g‖ per row.

        dist(x) = |f(x)| / ‖∇f(x)‖₂,   and ``inf`` where ∇f(x) = 0,

    the distance from x to the zero set of the linearisation t ↦ f(x) + ⟨∇f(x), t⟩ (exact
    for a linear f). The package's one definition of the formula: call it wherever f and ∇f
    are already computed (inside kernels too: it is pure and jit-able, and never gives NaN).

    Args:
        f: values, shape ``(B,)``.
        g: input gradients, shape ``(B, d)``.

    Returns:
        Shape ``(B,)``, in the dtype of ``f`` and ``g``.

    Raises:
        ValueError: if the shapes are not ``(B,)`` and ``(B, d)`` (checked statically).
    """
    _check_values_and_grads(f, g, "linearized_distance_from")
    gn = jnp.linalg.norm(g, axis=-1)
    return jnp.where(gn > 0, jnp.abs(f) / jnp.where(gn > 0, gn, 1.0), jnp.inf)


def flip_direction(net: Network, X: jax.Array) -> jax.Array:
    """Unit vectors u(x) = −sign(f(x)) ∇f(x) / ‖∇f(x)‖: the direction that moves f towards 0.

    Rows where ∇f(x) = 0 or f(x) = 0 are returned as zero vectors (no direction exists);
    :func:`mini_adv.attacks.ray_flip_distance` reports those rows with status
    ``ZERO_DIRECTION``/``ZERO_OUTPUT`` rather than as flips.

    Args:
        net: one network. X: ``(B, d)`` floating inputs.

    Returns:
        Shape ``(B, d)``, in the weights' dtype.

    Raises:
        ValueError: as :func:`value_and_input_grad`.
    """
    f, g = value_and_input_grad(net, X)
    return flip_direction_from(f, g)


def flip_direction_from(f: jax.Array, g: jax.Array) -> jax.Array:
    """−sign(f) g/‖g‖ per row, from precomputed values and gradients (zero where g = 0 or f = 0).

    Pure and jit-able; the formula of :func:`flip_direction`.

    Args:
        f: values, shape ``(B,)``.
        g: input gradients, shape ``(B, d)``.

    Returns:
        Shape ``(B, d)``: unit rows, or zero rows where no direction exists.

    Raises:
        ValueError: if the shapes are not ``(B,)`` and ``(B, d)`` (checked statically).
    """
    _check_values_and_grads(f, g, "flip_direction_from")
    gn = jnp.linalg.norm(g, axis=-1, keepdims=True)
    return jnp.where(gn > 0, -jnp.sign(f)[:, None] * g / jnp.where(gn > 0, gn, 1.0), 0.0)

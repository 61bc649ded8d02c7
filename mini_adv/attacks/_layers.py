"""The network seen from its first layer: the coordinates every search of the attacks uses.

Every search below moves x in straight lines or along ∇f, and the first layer
z₁ = x K₁ + b₁ is affine in x: along a ray x + t u it is z₁(x) + t (u K₁), and a step
x → x + c ∇f moves it by c ∇f K₁. So the searches carry z₁ (B, h₁) and pay for the first
layer (d·h₁ multiply-adds a row, the largest layer when the widths shrink) only when a
point must be produced in input space. The network is then evaluated from z₁ by
:func:`_tail`, and its input gradient is ∇f = g₁ K₁ᵀ with g₁ = ∂f/∂z₁ from one
backward pass through the tail.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mini_adv.activations import get_activation
from mini_adv.nets import MLPParams


def _unit(G: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Rows of G divided by their norms (zero rows stay zero), and the norms."""
    n = jnp.linalg.norm(G, axis=-1)
    return G / jnp.where(n > 0, n, 1.0)[:, None], n


def _first_layer(params: MLPParams, X: jax.Array) -> jax.Array:
    """z₁ = X K₁ + b₁ (the first pre-activation), shape ``X.shape[:-1] + (h₁,)``."""
    z = X @ params.kernels[0]
    return z if params.biases is None else z + params.biases[0]


def _tail(params: MLPParams, Z: jax.Array) -> jax.Array:
    """f from the first pre-activation: aᵀ σ(⋯ σ(σ(Z) K₂ + b₂) ⋯); ``Z (..., h₁)`` → ``(...)``.

    ``_tail(params, _first_layer(params, X))`` is :func:`~mini_adv.nets.apply` (the same
    operations in the same order).
    """
    sigma = get_activation(params.activation)
    h = sigma(Z)
    for i, k in enumerate(params.kernels[1:], start=1):
        h = h @ k
        if params.biases is not None:
            h = h + params.biases[i]
        h = sigma(h)
    return h @ params.readout


def _tail_value_and_grad(params: MLPParams, Z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(f, g₁)`` with g₁ = ∂f/∂z₁ for every row of ``Z (B, h₁)``; ∇ₓf = g₁ K₁ᵀ."""
    f, vjp = jax.vjp(lambda z: _tail(params, z), Z)
    return f, vjp(jnp.ones_like(f))[0]


class _Chart:
    """Coordinates for the iterates of DeepFool and the gradient flow (built at trace time).

    An iterate is x = X + lift(w). Each step adds a multiple of ∇f(x) = g₁ K₁ᵀ, so
    :meth:`direction` returns, for g₁, the step in chart coordinates ``v``, its image
    ``u`` = ∇f K₁ in first-layer coordinates (so z₁ moves by the same multiple of u), and
    ‖∇f‖. Two charts, chosen by the static shapes:

    * *input* (h₁ > d/2): w lives in ℝᵈ, v = ∇f = g₁ K₁ᵀ, u = ∇f K₁: 2·d·h₁ multiply-adds
      a row and step, what a forward and a backward pass through the first layer cost.
    * *first layer* (h₁ ≤ d/2): w lives in ℝ^{h₁} with x = X + w K₁ᵀ, v = g₁, u = g₁ M
      with the Gram matrix M = K₁ᵀ K₁ (d·h₁² once per call), and ‖∇f‖² = ⟨g₁, u⟩: h₁²
      multiply-adds a row and step instead of 2·d·h₁. Exact up to float rounding, with a
      relative error of about eps·cond(M) in ‖∇f‖; for a Gaussian K₁ with h₁ ≤ d/2,
      cond(M) ≤ ((1 + √½)/(1 − √½))² ≈ 34 (Marchenko–Pastur edges), while a square K₁
      (h₁ = d) has cond(M) of order d² and visibly perturbs long paths such as the flow's,
      hence the threshold. ‖∇f‖ is exactly 0 where g₁ = 0 or K₁ = 0.
    """

    def __init__(self, params: MLPParams):
        self.K = params.kernels[0]
        d, h1 = self.K.shape
        self.M = self.K.T @ self.K if 2 * h1 <= d else None
        self.size = d if self.M is None else h1
        """Dimension of the chart coordinates w."""

    def direction(self, g1: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        if self.M is None:
            G = g1 @ self.K.T
            return G, G @ self.K, jnp.linalg.norm(G, axis=-1)
        u = g1 @ self.M
        return g1, u, jnp.sqrt(jnp.maximum(jnp.sum(g1 * u, axis=-1), 0.0))

    def lift(self, w: jax.Array) -> jax.Array:
        """x − X for chart coordinates w."""
        return w if self.M is None else w @ self.K.T

    def image(self, w: jax.Array) -> jax.Array:
        """(x − X) K₁, the move of the first layer, for chart coordinates w: w K₁ or w M."""
        return w @ (self.K if self.M is None else self.M)


def _chart_start(params: MLPParams, X: jax.Array
                 ) -> tuple[jax.Array, "_Chart", jax.Array, jax.Array, jax.Array]:
    """The common start of the chart-based kernels (DeepFool, the flow): ``X`` in the weights'
    dtype, its :class:`_Chart`, the first layer z₁(X), and ``(B,)`` zeros and ``False``s."""
    X = X.astype(params.kernels[0].dtype)
    B = X.shape[0]
    return (X, _Chart(params), _first_layer(params, X), jnp.zeros((B,), X.dtype),
            jnp.zeros((B,), bool))

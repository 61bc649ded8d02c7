"""Gaussian expectations E φ(s·G), G ~ N(0, 1), by one Gauss–Hermite rule for the package.

    E φ(s·G) ≈ Σ_{i=1}^{n} w_i φ(s·z_i),    (z_i, w_i) = probabilists' Hermite nodes and
                                              weights (``numpy.polynomial.hermite_e``),
                                              normalised so that Σ_i w_i = 1,

with n = :data:`NUM_NODES`. The rule is exact for polynomials φ of degree < 2n; n is even,
so no node sits at 0, where ReLU and |x| have their kink, and the nodes are symmetric, so for
those two the rule is exact as well (E 1{G > 0} = 1/2).

* :func:`nodes` — the nodes and weights, in a given dtype;
* :func:`expectation` — E φ(s·G) for an elementwise φ and one or many scales s;
* :func:`length_map` — the infinite-width recursion of the pre-activation second moments of a
  random MLP, q_ℓ = E σ(c·√q_{ℓ−1}·G)² (Poole et al. 2016), used by chapter 2's norm
  propagation and chapter 4's mean-field moments.

Everything is a pure function of JAX arrays (it can be jitted and differentiated) and
computes in the dtype of the scale (float64 under ``jax.enable_x64``).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

NUM_NODES = 200
"""Number of Gauss–Hermite nodes of the package's rule (even: no node at the kink 0)."""

_Z, _W = np.polynomial.hermite_e.hermegauss(NUM_NODES)
_W = _W / math.sqrt(2.0 * math.pi)  # Σ w_i = 1: E φ(G) ≈ Σ w_i φ(z_i)


def nodes(dtype: Any = None) -> tuple[jax.Array, jax.Array]:
    """The ``(NUM_NODES,)`` nodes z_i and weights w_i (Σ w_i = 1) as JAX arrays of ``dtype``
    (default: JAX's default float, float64 under ``jax.enable_x64``)."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    return jnp.asarray(_Z, dtype), jnp.asarray(_W, dtype)


def expectation(fn: Callable[[jax.Array], jax.Array], std: Any = 1.0) -> jax.Array:
    """E fn(std·G) for G ~ N(0, 1) by :data:`NUM_NODES`-node Gauss–Hermite quadrature.

        E fn(std·G) ≈ Σ_i w_i fn(std·z_i)

    Args:
        fn: an elementwise function of a JAX array (e.g. ``lambda z: jnp.tanh(z) ** 2``).
        std: the scale s ≥ 0 of the Gaussian, a number or an array of any shape (one
            expectation per entry).

    Returns:
        An array of the shape of ``std``, in its floating dtype.
    """
    std = jnp.asarray(std)
    dtype = jnp.result_type(std.dtype, float)
    z, w = nodes(dtype)
    return jnp.sum(w * fn(std.astype(dtype)[..., None] * z), axis=-1)


def length_map(sigma: Callable[[jax.Array], jax.Array], scale: Any, depth: int,
               q0: Any = 1.0) -> jax.Array:
    """The length map of a random MLP: q_ℓ = E σ(c·√q_{ℓ−1}·G)² for ℓ = 1, …, L.

    For weights N(0, c²/fan_in) and an input with ‖x‖²/d = q_0, the pre-activation of layer ℓ
    is N(0, c² q_{ℓ−1}) at infinite width and q_ℓ = ‖h_ℓ‖²/h_ℓ (Poole et al. 2016): ReLU with
    c² = 2 keeps q_ℓ = q_0, with c² = 1 halves it at each layer. The pre-activation variances
    of the mean-field moments are p_ℓ = c² q_{ℓ−1}. One ``lax.scan`` over the layers.

    Args:
        sigma: an elementwise activation. scale: c > 0. depth: L ≥ 1 (static).
        q0: ‖x‖²/d (1 on the book's sphere of radius √d).

    Returns:
        ``(L + 1,)`` array q_0, q_1, …, q_L in the dtype of ``scale`` and ``q0``.
    """
    scale = jnp.asarray(scale)
    dtype = jnp.result_type(scale.dtype, jnp.asarray(q0).dtype, float)
    scale, q0 = scale.astype(dtype), jnp.asarray(q0, dtype)

    def step(q: jax.Array, _: None) -> tuple[jax.Array, jax.Array]:
        q_next = expectation(lambda z: sigma(z) ** 2, scale * jnp.sqrt(q))
        return q_next, q_next

    _, qs = jax.lax.scan(step, q0, None, length=depth)
    return jnp.concatenate([q0[None], qs])

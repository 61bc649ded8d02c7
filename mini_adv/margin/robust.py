"""The universal direction û ∝ Σ_i y_i x_i and a robust network that fits the same data.

At a KKT point on nearly orthogonal data one direction flips every training point at distance
of order ‖x‖/√n (:func:`universal_direction`), while :func:`robust_network` fits the same data
with a certified radius about √n/2 times larger (the book's reconstruction; Vardi, Yehudai &
Shamir 2022 prove that KKT points are non-robust and that robust networks exist).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mini_adv.margin.network import TwoLayerNet, _check_data
from mini_adv.nets import MLPParams


def _universal(X: jax.Array, y: jax.Array) -> jax.Array:
    """Σ_i y_i x_i / ‖Σ_i y_i x_i‖, a pure function (no checks; rows with y_i = 0 drop out)."""
    s = y @ X
    return s / jnp.linalg.norm(s)


def universal_direction(X: Any, y: Any) -> jax.Array:
    """û = Σ_i y_i x_i / ‖Σ_i y_i x_i‖, the direction that flips a KKT network everywhere.

    At a KKT point on nearly orthogonal data, a unit voting for class +1 has
    w_j = v_j Σ_{i: y_i = +1} λ_i σ'_ij x_i, so ⟨w_j, û⟩ > 0, and a unit voting −1 has
    ⟨w_j, û⟩ < 0: moving a positive point along −û lowers every positive unit and switches
    on the negative ones (the book's reconstruction of Vardi, Yehudai & Shamir 2022). Attack
    point i along −y_i û.

    Args:
        X: ``(n, d)`` inputs. y: ``(n,)`` labels ±1.

    Returns:
        ``(d,)`` unit vector.

    Raises:
        ValueError: for mismatched shapes, NaN/inf, labels other than ±1, or Σ_i y_i x_i = 0.
    """
    X, y = _check_data(X, y)
    if float(jnp.linalg.norm(y @ X)) == 0.0:
        raise ValueError("Σ_i y_i x_i = 0: the universal direction is undefined for these data")
    return _universal(X, y)


def robust_params(X: jax.Array, y: jax.Array) -> MLPParams:
    """The parameters of :func:`robust_network`'s N_rob, as a pure function (no checks).

    N_rob in its balanced form: unit i is (c_i x_i, −c_i‖x_i‖²/2, y_i/c_i) with
    c_i = (‖x_i‖² + ‖x_i‖⁴/4)^{−1/4}, so v_i² = ‖w_i‖² + b_i² (the same function).
    """
    sq = jnp.sum(X * X, axis=-1)
    c = (sq + 0.25 * sq * sq) ** -0.25
    return MLPParams(kernels=(X.T * c[None, :],), readout=y / c, biases=(-0.5 * c * sq,),
                     activation="relu")


def _certified_radius(X: jax.Array, y: jax.Array) -> jax.Array:
    """r_k = min(‖x_k‖/2, min_{i: y_i ≠ y_k} (‖x_i‖²/2 − ⟨x_i, x_k⟩)/‖x_i‖), floored at 0."""
    sq = jnp.sum(X * X, axis=-1)
    nx = jnp.sqrt(sq)
    G = X @ X.T                                               # G[i, k] = ⟨x_i, x_k⟩
    gap = (0.5 * sq[:, None] - G) / jnp.where(nx > 0, nx, 1.0)[:, None]  # unit i at point k
    other = y[:, None] * y[None, :] < 0                       # (label 0: padding, no unit)
    worst = jnp.min(jnp.where(other, gap, jnp.inf), axis=0)
    return jnp.maximum(jnp.minimum(0.5 * nx, worst), 0.0)


def robust_network(X: Any, y: Any) -> tuple[TwoLayerNet, np.ndarray]:
    """A network that fits (X, y) robustly, with a certified radius per training point.

        N_rob(x) = Σ_i y_i σ(⟨x_i, x⟩ − ‖x_i‖²/2)

    (one unit per training point; w_i = x_i, bias b_i = −‖x_i‖²/2 < 0, v_i = y_i, stored
    rescaled unit by unit to the balanced form v_i² = ‖w_i‖² + b_i², which computes the
    same function with the smallest ‖θ‖², so that :func:`normalized_margin` compares it
    fairly with a KKT point). Certified radius: for ‖δ‖ < r_k with

        r_k = min( ‖x_k‖/2,  min_{i: y_i ≠ y_k} (‖x_i‖²/2 − ⟨x_i, x_k⟩)/‖x_i‖ ),

    the unit of x_k stays on (⟨x_k, x_k + δ⟩ − ‖x_k‖²/2 ≥ ‖x_k‖²/2 − ‖x_k‖‖δ‖ > 0) and every
    unit of the other class stays off (⟨x_i, x_k + δ⟩ − ‖x_i‖²/2 ≤ ⟨x_i, x_k⟩ + ‖x_i‖‖δ‖ −
    ‖x_i‖²/2 < 0), while units of the same class add non-negative terms: so
    sign N_rob(x_k + δ) = y_k. On the sphere of radius √d with nearly orthogonal points,
    r_k ≈ ‖x‖/2 − max_i ⟨x_i, x_k⟩/‖x‖, about √n/2 times the ‖x‖/√n flip size of a KKT
    network. It is not a KKT point of (P) when ⟨x_i, x_k⟩ < ‖x_i‖²/2 for all k ≠ i: unit i is
    then active at x_i only, the bias equation of (KKT) gives b_i = v_i λ_i y_i ≥ 0, but
    b_i < 0. (Our construction: Vardi, Yehudai & Shamir 2022 prove that robust networks
    exist; whether theirs is this one we do not know.)

    Returns:
        ``(net, radius)``: a :class:`TwoLayerNet` with biases, and ``(n,)`` radii r_k
        (0 where the certificate fails, e.g. an other-class point with ⟨x_i, x_k⟩ ≥ ‖x_i‖²/2).

    Raises:
        ValueError: for mismatched shapes, NaN/inf, labels other than ±1 or a zero point.
    """
    X, y = _check_data(X, y)
    if bool(jnp.any(jnp.sum(X * X, axis=-1) == 0)):
        raise ValueError("X has a zero point; the robust network needs x_i ≠ 0")
    return TwoLayerNet.from_params(robust_params(X, y)), np.asarray(_certified_radius(X, y))

"""Inputs on the sphere.

Every theorem in the book is stated for inputs of norm √d (equivalently, coordinates of
order 1), drawn independently of the network. :func:`sphere` draws them.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _check_size(name: str, value: Any) -> int:
    """Return ``value`` as an int if it is a positive integer, else raise ``ValueError``.

    Shared by the modules that take counts and sizes (:mod:`mini_adv.rmt`,
    :mod:`mini_adv.scaling`).
    """
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def sphere(key: jax.Array, n: int, d: int, radius: float | None = None) -> jax.Array:
    """``n`` points uniform on the sphere of radius ``radius`` (default √d) in ℝ^d.

    x = r · g / ‖g‖ with g ~ N(0, I_d): the Gaussian is rotation invariant, so x/‖x‖ is
    uniform on S^{d−1}.

    Args:
        key: PRNG key.
        n: number of points.
        d: dimension.
        radius: ‖x‖ for every point; ``None`` means √d (the book's convention).

    Returns:
        ``(n, d)`` float32 array with every row of norm ``radius``.

    Raises:
        ValueError: if ``n`` or ``d`` is not a positive integer, or ``radius`` is not a
            positive finite number.
    """
    _check_size("n", n)
    _check_size("d", d)
    r = math.sqrt(d) if radius is None else radius
    if not (isinstance(r, (int, float)) and math.isfinite(r) and r > 0):
        raise ValueError(f"radius must be a positive finite number, got {radius!r}")
    g = jax.random.normal(key, (n, d))
    return r * g / jnp.linalg.norm(g, axis=-1, keepdims=True)

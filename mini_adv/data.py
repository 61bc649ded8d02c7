"""Inputs on the sphere.

Every theorem in the book is stated for inputs of norm √d (equivalently, coordinates of
order 1), drawn independently of the network. :func:`sphere` draws them;
:func:`sphere_batches` draws one batch per network of a stack.

Arrays come out in JAX's default float dtype: float32, or float64 under ``jax.enable_x64``
(:func:`mini_adv.runtime.float64`), the dtype :func:`mini_adv.nets.init_params` draws the
weights in. Sizes and numbers may be Python, NumPy or 0-d JAX scalars
(:mod:`mini_adv.validation`).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mini_adv.validation import check_float_array, check_key, check_number, check_size



def _radius(d: int, radius: Any) -> float:
    """√d for ``None``, else ``radius`` as a positive finite float."""
    if radius is None:
        return math.sqrt(d)
    try:
        return float(check_number("radius", radius, low=0.0))
    except ValueError:
        raise ValueError(f"radius must be a positive finite number, got {radius!r}") from None


def sphere(key: jax.Array, n: int, d: int, radius: float | None = None) -> jax.Array:
    """``n`` points uniform on the sphere of radius ``radius`` (default √d) in ℝ^d.

    x = r · g / ‖g‖ with g ~ N(0, I_d): the Gaussian is rotation invariant, so x/‖x‖ is
    uniform on S^{d−1}.

    Args:
        key: PRNG key (``jax.random.key(seed)``).
        n: number of points.
        d: dimension.
        radius: ‖x‖ for every point; ``None`` means √d (the book's convention). A Python,
            NumPy or 0-d JAX number.

    Returns:
        ``(n, d)`` array in the default float dtype (float32; float64 under x64), every row
        of norm ``radius``.

    Raises:
        ValueError: if ``key`` is not a PRNG key, ``n`` or ``d`` is not a positive integer,
            or ``radius`` is not a positive finite number.
    """
    key = check_key(key)
    n, d = check_size("n", n), check_size("d", d)
    r = _radius(d, radius)
    g = jax.random.normal(key, (n, d))
    return r * g / jnp.linalg.norm(g, axis=-1, keepdims=True)


def sphere_batches(key: jax.Array, n_networks: int, n: int, d: int,
                   radius: float | None = None) -> jax.Array:
    """One batch of ``n`` inputs on the sphere per network of a stack of ``n_networks``.

    X[i] holds the inputs of network i (independent of the network, as the theorems assume):
    ``sphere(key, n_networks * n, d, radius).reshape(n_networks, n, d)``, so the same key gives
    the same points as that expression. The shape that :func:`mini_adv.parallel.map_networks`
    takes next to ``init_params(key, widths, n=n_networks)``.

    Args:
        key: PRNG key.
        n_networks: N, the number of networks.
        n: inputs per network.
        d: dimension.
        radius: ‖x‖ for every point; ``None`` means √d.

    Returns:
        ``(n_networks, n, d)`` array in the default float dtype, every row of norm ``radius``.

    Raises:
        ValueError: as :func:`sphere`, and if ``n_networks`` is not a positive integer.
    """
    n_networks, n, d = (check_size("n_networks", n_networks), check_size("n", n),
                        check_size("d", d))
    return sphere(key, n_networks * n, d, radius).reshape(n_networks, n, d)


def signs(key: jax.Array, n: int, *, balanced: bool = True) -> jax.Array:
    """``n`` labels in {−1, +1}: a random order of ⌊n/2⌋ (+1)'s and ⌈n/2⌉ (−1)'s, or i.i.d. fair signs.

    Balanced labels keep both classes present for every n (the max-margin theorems of
    chapter 5 need both; with i.i.d. signs all n labels agree with probability 2^{1−n}).

    Returns:
        ``(n,)`` array of ±1 in the default float dtype (float32; float64 under x64).

    Raises:
        ValueError: if ``key`` is not a PRNG key or ``n`` is not a positive integer.
    """
    key = check_key(key)
    n = check_size("n", n)
    if not balanced:
        return jnp.where(jax.random.bernoulli(key, 0.5, (n,)), 1.0, -1.0)
    return jax.random.permutation(key, jnp.where(jnp.arange(n) < n // 2, 1.0, -1.0))


def nearly_orthogonal(key: jax.Array, n: int, d: int, *, radius: float | None = None,
                      balanced: bool = True) -> tuple[jax.Array, jax.Array]:
    """A training set for chapter 5: ``n`` points uniform on the sphere of radius √d, random labels.

    x_i = √d · g_i/‖g_i‖ (:func:`sphere`), y_i from :func:`signs`. For i ≠ j,
    ⟨x_i, x_j⟩/d has mean 0 and standard deviation 1/√d, so with n ≪ √d the points are
    nearly orthogonal in the sense of Vardi, Yehudai & Shamir (2022):
    max_{i≠j} |⟨x_i, x_j⟩| ≤ ‖x‖²/(c n). :func:`coherence` measures it.

    Returns:
        ``(X, y)``: ``(n, d)`` inputs and ``(n,)`` labels in {±1}.

    Raises:
        ValueError: for a key that is not a PRNG key, non-positive sizes or radius.
    """
    k_x, k_y = jax.random.split(check_key(key))
    return sphere(k_x, n, d, radius), signs(k_y, n, balanced=balanced)


def coherence(X: Any) -> float:
    """μ(X) = max_{i≠j} |⟨x_i, x_j⟩| / min_i ‖x_i‖², the largest normalised cross-correlation.

    The near-orthogonality condition of the max-margin theorems reads n · μ(X) ≤ 1/c for a
    large constant c. For n points uniform on a sphere in ℝ^d, each ⟨x_i, x_j⟩/‖x‖² is
    nearly N(0, 1/d), so μ is about the largest of n(n−1)/2 such values,
    μ ≈ √(2 ln(n(n−1)/2) / d) ≈ 2√(ln n / d); n · μ ≤ 1 then needs n ≲ √(d / (4 ln n)).

    Args:
        X: ``(n, d)`` points, n ≥ 2, none of them zero.

    Returns:
        μ(X) as a float.

    Raises:
        ValueError: for a wrong shape, fewer than 2 points, a zero point, or NaN/inf.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"X must have shape (n, d) with n ≥ 2; got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or inf; pass finite values")
    G = X @ X.T
    sq = np.diag(G).copy()
    if np.any(sq == 0):
        raise ValueError("X has a zero row; every point must be non-zero")
    np.fill_diagonal(G, 0.0)
    return float(np.max(np.abs(G)) / np.min(sq))


def cluster_means(key: jax.Array, k: int, d: int, *, radius: float | None = None
                  ) -> tuple[jax.Array, jax.Array]:
    """``k`` cluster means uniform on the sphere of radius √d, with balanced labels.

    Nearly orthogonal means (k ≪ d) give the setting of Frei, Vardi, Bartlett & Srebro
    (2023): each cluster carries one label; draw points with :func:`clusters`.

    Returns:
        ``(means, labels)``: ``(k, d)`` and ``(k,)`` in {±1} (:func:`signs`).

    Raises:
        ValueError: for a key that is not a PRNG key, non-positive sizes or radius.
    """
    k_m, k_y = jax.random.split(check_key(key))
    return sphere(k_m, k, d, radius), signs(k_y, k)


def clusters(key: jax.Array, means: Any, labels: Any, n: int, *, noise: float = 0.5,
             balanced: bool = True) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``n`` points from the mixture of Gaussian clusters around ``means``.

        x = μ_c + (noise/√d)·‖μ_c‖ · g,   g ~ N(0, I_d),   y = label_c,

    so the noise has norm about ``noise``·‖μ_c‖ and is nearly orthogonal to every mean. The
    cluster c of each point is a random order of ⌊n/k⌋ or ⌈n/k⌉ points per cluster
    (``balanced``; no cluster is left without points), or i.i.d. uniform. A training set and
    a test set drawn with different keys share the means.

    Args:
        key: PRNG key. means: ``(k, d)`` floating. labels: ``(k,)`` in {±1}. n: number of points.
        noise: ‖x − μ_c‖/‖μ_c‖, about; ≥ 0.
        balanced: equal cluster sizes (up to one) instead of i.i.d. cluster indices.

    Returns:
        ``(X, y, c)``: ``(n, d)`` points, ``(n,)`` labels and ``(n,)`` cluster indices.

    Raises:
        ValueError: for a key that is not a PRNG key, means that are not real floating-point
            numbers or hold NaN/inf, mismatched shapes, labels other than ±1, a negative or
            non-finite noise level or a non-positive n.
    """
    key = check_key(key)
    n = check_size("n", n)
    means, labels = check_float_array("means", means), jnp.asarray(labels)
    if means.ndim != 2 or labels.shape != (means.shape[0],):
        raise ValueError(f"means must be (k, d) and labels (k,); got {tuple(means.shape)} "
                         f"and {tuple(labels.shape)}")
    if not bool(jnp.all(jnp.abs(labels) == 1)):
        raise ValueError("labels must be ±1")
    try:
        noise = float(check_number("noise", noise, low=0.0, strict_low=False))
    except ValueError:
        raise ValueError(f"noise must be a finite number ≥ 0, got {noise!r}") from None
    k, d = means.shape
    k_c, k_g = jax.random.split(key)
    c = (jax.random.permutation(k_c, jnp.arange(n) % k) if balanced
         else jax.random.randint(k_c, (n,), 0, k))
    mu = means[c]
    g = jax.random.normal(k_g, (n, d), dtype=means.dtype)
    scale = noise * jnp.linalg.norm(mu, axis=-1, keepdims=True) / math.sqrt(d)
    return mu + scale * g, labels[c].astype(means.dtype), c

"""Inputs on the sphere, labelled data sets, and real digits.

Every theorem in the book is stated for inputs of norm √d (equivalently, coordinates of
order 1), drawn independently of the network. :func:`sphere` draws them;
:func:`sphere_batches` draws one batch per network of a stack. :func:`digits` gives chapter
6's real data in the same convention (scikit-learn's bundled 8×8 handwritten digits, d = 64,
no download), and :func:`embed` places them on a 64-dimensional subspace of ℝ^D.

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

DIGITS_D = 64
"""The dimension of scikit-learn's digits: 8 × 8 pixels."""

SPLITS = ("train", "test")

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


def _digit_classes(classes: Any) -> tuple[int, int]:
    try:
        ok = not isinstance(classes, (str, bytes)) and all(
            isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)) for c in classes)
        a, b = (int(c) for c in classes) if ok else (0, 0)
    except (TypeError, ValueError):
        ok = False
    if not ok or not (0 <= a <= 9 and 0 <= b <= 9) or a == b:
        raise ValueError(f"classes must be two different digits in 0..9, e.g. (3, 8); got {classes!r}")
    return a, b


def digits(classes: Any = (3, 8), *, split: str = "train", test_fraction: float = 0.3,
           seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """Two classes of scikit-learn's handwritten digits, in the book's convention.

    ``sklearn.datasets.load_digits`` ships with scikit-learn (no download): 1797 images of
    8 × 8 pixels with grey levels 0–16, so d = 64. The images of the two classes are split once,
    stratified by class (``sklearn.model_selection.train_test_split`` with ``random_state=seed``),
    and both splits are then mapped by the same rule, fixed by the *training* images alone:

        x = √d · (p − p̄_train) / ‖p − p̄_train‖,

    with p the pixel vector and p̄_train the mean training image: rows centred by the training
    mean and scaled to norm √d, as the theorems' inputs. Labels: y = +1 for ``classes[0]``,
    −1 for ``classes[1]``. The same arguments give the same arrays, on every machine.

    Args:
        classes: the two digits ``(a, b)``, different, in 0..9.
        split: ``"train"`` or ``"test"``.
        test_fraction: the share of each class held out for ``"test"``, in (0, 1).
        seed: the split's seed (an integer ≥ 0).

    Returns:
        ``(X, y)``: ``(n, 64)`` rows of norm √64 = 8 and ``(n,)`` labels in {±1}, both in the
        default float dtype (float32; float64 under x64). ``X.reshape(-1, 8, 8)`` are the images.

    Raises:
        ValueError: for classes that are not two different digits, an unknown split, a test
            fraction outside (0, 1) or a negative seed.
    """
    P, y, mean = _digit_split(classes, split, test_fraction, seed)
    X = math.sqrt(DIGITS_D) * (P - mean) / _centred_norms(P, mean)
    return jnp.asarray(X, dtype=jnp.zeros(()).dtype), jnp.asarray(y, dtype=jnp.zeros(()).dtype)


def digit_pixels(classes: Any = (3, 8), *, split: str = "train", test_fraction: float = 0.3,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The grey levels behind :func:`digits` (same arguments, same rows, same order).

    Row i of ``digits(...)`` is x_i = (p_i − p̄_train)/c_i with c_i = ‖p_i − p̄_train‖/√d, so a
    perturbation δ of x_i is the perturbation c_i·δ of the image p_i in grey levels. Figures
    use this to show digits as digits (:func:`mini_adv.figures.ch6.draw_perturbations`).

    Returns:
        ``(P, c)``: ``(n, 64)`` grey levels in 0..16 (NumPy float64) and ``(n,)`` factors c_i.

    Raises:
        ValueError: as :func:`digits`.
    """
    P, _, mean = _digit_split(classes, split, test_fraction, seed)
    return P, _centred_norms(P, mean)[:, 0] / math.sqrt(DIGITS_D)


def _digit_split(classes: Any, split: str, test_fraction: float, seed: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grey levels, ±1 labels and the mean training image of one split of two digit classes."""
    a, b = _digit_classes(classes)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    frac = float(check_number("test_fraction", test_fraction, low=0.0, high=1.0, strict_high=True))
    seed = int(check_number("seed", seed, integer=True, low=0, strict_low=False))
    from sklearn.datasets import load_digits  # scikit-learn is imported only here
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    keep = (bunch.target == a) | (bunch.target == b)
    P = bunch.data[keep].astype(np.float64)
    y = np.where(bunch.target[keep] == a, 1.0, -1.0)
    P_tr, P_te, y_tr, y_te = train_test_split(P, y, test_size=frac, stratify=y, random_state=seed)
    P, y = (P_tr, y_tr) if split == "train" else (P_te, y_te)
    return P, y, P_tr.mean(axis=0)


def _centred_norms(P: np.ndarray, mean: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(P - mean, axis=1, keepdims=True)
    if np.any(norms == 0):  # an image equal to the mean image: no direction to scale
        raise ValueError("an image equals the mean training image; choose another seed")
    return norms


def embed(X: Any, D: int, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Rows of ``X`` ∈ ℝ^{n×d} mapped into ℝ^D by a random isometry, and the projector onto its range.

        z_i = Q x_i,   Q ∈ ℝ^{D×d} with orthonormal columns (QᵀQ = I_d),   P = Q Qᵀ,

    with Q the orthonormal factor of a D × d Gaussian matrix (its column space is uniform among
    the d-dimensional subspaces). Norms and inner products are kept (‖z_i‖ = ‖x_i‖), so
    digits of norm √64 stay at norm 8: the data then lie on a 64-dimensional subspace of ℝ^D,
    the setting of Melamed, Yehudai & Vardi (NeurIPS 2023). For a perturbation δ ∈ ℝ^D,
    δP is its part on the data subspace and δ − δP the part off it (P is symmetric).

    Args:
        X: ``(n, d)`` real floating rows, finite.
        D: the ambient dimension, an integer ≥ d.
        key: PRNG key.

    Returns:
        ``(Z, P)``: ``(n, D)`` embedded rows and the ``(D, D)`` orthogonal projector onto the
        subspace, in the dtype of ``X``.

    Raises:
        ValueError: for ``X`` that is not a 2-D finite floating array, ``D`` smaller than d or
            not an integer, or a key that is not a PRNG key.
    """
    key = check_key(key)
    X = check_float_array("X", X)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (n, d); got shape {tuple(X.shape)}")
    d = X.shape[1]
    D = check_size("D", D)
    if D < d:
        raise ValueError(f"D must be at least the data dimension d = {d}; got D = {D}")
    Q, R = jnp.linalg.qr(jax.random.normal(key, (D, d), dtype=X.dtype))
    Q = Q * jnp.sign(jnp.diagonal(R))  # the sign convention that makes Q Haar-distributed
    return X @ Q.T, Q @ Q.T

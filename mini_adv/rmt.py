"""Chapter 2: random-matrix facts behind the adversarial-example theorems.

Every later proof uses a handful of facts about Gaussian vectors and matrices in high
dimension. This module computes each one, exactly or by sampling many independent draws:

* **Random vectors** — independent Gaussian vectors are nearly orthogonal,
  √d · cos∠(g, g') → N(0, 1), and ‖g‖/√d → 1 (:func:`cosines_and_norms`).
* **Singular values** — a Gaussian m × n matrix with m ≤ n and N(0, σ²) entries has its
  singular values in σ(√n ± √m) (Davidson–Szarek / Gordon; Vershynin 2012, Cor. 5.35), with
  the Marchenko–Pastur law in between (Marchenko & Pastur 1967; Bai & Silverstein 2010):
  :func:`mp_edges`, :func:`mp_density`, :func:`mp_singular_density`,
  :func:`singular_value_edges`, :func:`gaussian_singular_values`,
  :func:`singular_values_by_rows`, :func:`union_bound_epsilon`.
* **Norm propagation** — with He scaling a ReLU layer preserves ‖h‖²/width in expectation,
  with relative fluctuations of order √(depth/width) (He et al. 2015; Hanin 2018):
  :func:`layer_norms`, :func:`sample_layer_norms`, :func:`length_map`,
  :func:`relu_norm_variance`.
* **Gradients** — ‖∇f(x)‖ concentrates and ∇f(x) is as orthogonal to x as a random vector,
  so by Euler's identity |f|/(‖∇f‖‖x‖) = |cos∠(x, ∇f)| ≈ |Z|/√d (Daniely & Shacham 2020):
  :func:`gradient_stats`, :func:`sample_gradient_stats`, :func:`cosine_scaling`,
  :func:`gradient_on_ball`.

The chapter's figures are in :mod:`mini_adv.figures.ch2`; the power-law fit is
:func:`mini_adv.stats.fit_power_law`.

Kernels are pure functions of arrays (or of a stacked :class:`~mini_adv.nets.MLPParams` of N
independent networks from ``nets.init_params(..., n=N)``), jitted once per shape and vmapped
over draws (the many-network kernels through :func:`mini_adv.parallel.map_networks`); the
public wrappers validate their arguments (:mod:`mini_adv.validation`) and raise ``ValueError``
with what to change. Inputs on the same network are correlated: statistics that need independent replicates
use many networks.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mini_adv.activations import Activation, get_activation
from mini_adv import quadrature
from mini_adv.data import sphere, sphere_batches
from mini_adv.gradients import value_and_input_grad_kernel
from mini_adv.nets import MLPParams, apply, forward, init_params, resolve_weight_scale
from mini_adv.parallel import map_networks
from mini_adv.stats import fit_power_law, network_mean
from mini_adv.validation import (check_finite, check_fraction, check_key, check_number,
                                 check_params, check_size, check_stacked_batch)

__all__ = [
    "cosines_and_norms", "mp_edges", "mp_density", "mp_singular_density", "singular_value_edges",
    "gaussian_singular_values", "singular_values_by_rows", "union_bound_epsilon", "layer_norms",
    "sample_layer_norms", "length_map", "relu_norm_variance", "GradientStats", "gradient_stats",
    "sample_gradient_stats", "CosineScaling", "cosine_scaling", "BallGradients",
    "gradient_on_ball", "cosine_density", "norm_density", "switching_fraction"]

def _stacked(params: Any, X: Any) -> tuple[MLPParams, jax.Array]:
    """``(params, X)`` checked: a stack of N networks and ``(N, B, d)`` inputs in its dtype."""
    params = check_params(params, stacked=True, name="params")
    return params, check_stacked_batch(params, X)


# ---------------------------------------------------------------------------------------------
# 1. random vectors
# ---------------------------------------------------------------------------------------------


@partial(jax.jit, static_argnums=(1, 2))
def _cosines_and_norms(key: jax.Array, d: int, n: int) -> tuple[jax.Array, jax.Array]:
    g, h = jax.random.normal(key, (2, n, d))
    gn, hn = jnp.linalg.norm(g, axis=1), jnp.linalg.norm(h, axis=1)
    return jnp.sum(g * h, axis=1) / (gn * hn), gn / math.sqrt(d)


def cosines_and_norms(key: jax.Array, d: int, n: int) -> tuple[jax.Array, jax.Array]:
    """Cosines between independent Gaussian vectors, and their norms, in ℝ^d.

    For g, g' ~ N(0, I_d) independent: cos∠(g, g') = ⟨g, g'⟩/(‖g‖‖g'‖) has mean 0 and
    variance exactly 1/d (and √d · cos → N(0, 1)), while ‖g‖/√d → 1 with standard
    deviation ≈ 1/√(2d) (Vershynin 2018, §3.1).

    Args:
        key: PRNG key. d: dimension. n: number of independent pairs.

    Returns:
        ``(cos, norm)``: ``(n,)`` cosines and ``(n,)`` values of ‖g‖/√d.

    Raises:
        ValueError: if ``d`` or ``n`` is not a positive integer.
    """
    return _cosines_and_norms(key, check_size("d", d), check_size("n", n))


def cosine_density(t: Any, d: int) -> np.ndarray:
    """Exact density of cos∠(g, g') for independent g, g' ~ N(0, I_d), d ≥ 2.

        p_d(t) = (1 − t²)^{(d−3)/2} / B(1/2, (d − 1)/2),   t ∈ (−1, 1),

    the law of the first coordinate of a uniform unit vector (Vershynin 2018, §3.3); uniform on
    [−1, 1] for d = 3 and close to the N(0, 1/d) density for large d. Zero outside (−1, 1).

    Args:
        t: points, any shape. d: the dimension (≥ 2).

    Returns:
        The density at ``t``, a NumPy array of ``t``'s shape.

    Raises:
        ValueError: if ``d`` is not an integer ≥ 2.
    """
    d = check_size("d", d)
    if d < 2:
        raise ValueError(f"the cosine of two vectors in R^d has a density only for d >= 2, got d = {d}")
    t = np.asarray(t, dtype=float)
    log_beta = math.lgamma(0.5) + math.lgamma((d - 1) / 2) - math.lgamma(d / 2)
    inside = np.abs(t) < 1
    safe = np.where(inside, 1 - t**2, 1.0)
    return np.where(inside, np.exp((d - 3) / 2 * np.log(safe) - log_beta), 0.0)


def norm_density(u: Any, d: int) -> np.ndarray:
    """Exact density of ‖g‖/√d for g ~ N(0, I_d) (a scaled chi distribution with d degrees).

        p_d(u) = √d · χ_d(√d u),   χ_d(r) = r^{d−1} e^{−r²/2} / (2^{d/2 − 1} Γ(d/2)),   u > 0,

    close to the N(1, 1/(2d)) density for large d (:func:`cosines_and_norms`).

    Args:
        u: points, any shape. d: the dimension (≥ 1).

    Returns:
        The density at ``u``, a NumPy array of ``u``'s shape (0 for u ≤ 0).

    Raises:
        ValueError: if ``d`` is not a positive integer.
    """
    d = check_size("d", d)
    u = np.asarray(u, dtype=float)
    pos = u > 0
    r = np.sqrt(d) * np.where(pos, u, 1.0)
    log_chi = (d - 1) * np.log(r) - r**2 / 2 - (d / 2 - 1) * math.log(2) - math.lgamma(d / 2)
    return np.where(pos, math.sqrt(d) * np.exp(log_chi), 0.0)


def switching_fraction(d: int, radius: float) -> float:
    """Predicted fraction of ReLU units whose sign changes from x to y = x + r u.

    For a unit with Gaussian weights w ~ N(0, c I_d), P(sign⟨w, x⟩ ≠ sign⟨w, y⟩) = ∠(x, y)/π
    exactly (the switching law; Goemans & Williamson 1995, Lemma 3.2). For ‖x‖ = √d and a
    random unit u, nearly orthogonal to x, ∠(x, x + r u) ≈ arctan(r/√d), so

        fraction ≈ arctan(r/√d) / π,

    for the first layer exactly in expectation up to the angle approximation, and to first order
    in the angle for deeper He-ReLU layers (the arc-cosine map keeps small angles).

    Args:
        d: the input dimension (x on the sphere of radius √d). radius: r > 0.

    Returns:
        arctan(r/√d)/π.

    Raises:
        ValueError: if ``d`` is not a positive integer or ``radius`` is not positive.
    """
    d = check_size("d", d)
    r = check_number("radius", radius, low=0.0)
    if r <= 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    return math.atan(r / math.sqrt(d)) / math.pi


# ---------------------------------------------------------------------------------------------
# 2. singular values: Marchenko–Pastur
# ---------------------------------------------------------------------------------------------


def mp_edges(ratio: float, var: float = 1.0) -> tuple[float, float]:
    """Edges of the Marchenko–Pastur law: λ± = σ²(1 ± √r)².

    The eigenvalues of (1/n) G Gᵀ, for G an m × n matrix with i.i.d. N(0, σ²) entries and
    m/n → r ∈ (0, 1], fill [λ−, λ+] (Marchenko & Pastur 1967; Bai & Silverstein 2010, Ch. 3);
    the extreme eigenvalues converge to the edges (Bai & Yin 1993).

    Args:
        ratio: r = m/n in (0, 1]. var: the entry variance σ².

    Returns:
        ``(λ−, λ+)`` as floats.

    Raises:
        ValueError: for r outside (0, 1] (or NaN) or a non-positive σ². For a wide matrix
            (m > n) pass r = min(m, n)/max(m, n): the nonzero spectrum is the same.
    """
    r, v = check_fraction("ratio", ratio), check_number("var", var, low=0.0)
    return v * (1 - math.sqrt(r)) ** 2, v * (1 + math.sqrt(r)) ** 2


@jax.jit
def _mp_density(x: jax.Array, r: jax.Array, v: jax.Array) -> jax.Array:
    lo, hi = v * (1 - jnp.sqrt(r)) ** 2, v * (1 + jnp.sqrt(r)) ** 2
    inside = (x > lo) & (x < hi) & (x > 0)
    xs = jnp.where(inside, x, 0.5 * (lo + hi))
    return jnp.where(inside, jnp.sqrt((hi - xs) * (xs - lo)) / (2 * jnp.pi * v * r * xs), 0.0)


def mp_density(x: Any, ratio: float, var: float = 1.0) -> jax.Array:
    """Marchenko–Pastur density of the eigenvalues of (1/n) G Gᵀ (G: m × n, r = m/n ≤ 1).

        p(λ) = √((λ+ − λ)(λ − λ−)) / (2π σ² r λ)   on [λ−, λ+],   0 elsewhere,

    with λ± = σ²(1 ± √r)² (Marchenko & Pastur 1967). It integrates to 1 for r ∈ (0, 1] (for
    r > 1 the law of the m eigenvalues has an extra atom at 0; pass min/max instead).

    Args:
        x: points λ (any shape). ratio: r = m/n in (0, 1]. var: σ².

    Returns:
        p(x), same shape as ``x``.

    Raises:
        ValueError: for r outside (0, 1], a non-positive σ², or non-finite ``x``.
    """
    r, v = check_fraction("ratio", ratio), check_number("var", var, low=0.0)
    x = jnp.asarray(x, dtype=jnp.result_type(float))
    check_finite("x", x)
    return _mp_density(x, jnp.asarray(r), jnp.asarray(v))


def mp_singular_density(s: Any, ratio: float) -> jax.Array:
    """Density of the singular values s of G/√n (unit-variance entries): 2s · p(s²).

    Supported on [1 − √r, 1 + √r]; for r = 1 it is the quarter-circle law √(4 − s²)/π.

    Raises:
        ValueError: for r outside (0, 1] or non-finite ``s``.
    """
    s = jnp.asarray(s, dtype=jnp.result_type(float))
    return 2 * s * mp_density(s * s, ratio) * (s > 0)


def singular_value_edges(m: int, n: int, std: float = 1.0) -> tuple[float, float]:
    """Predicted extreme singular values σ(√n − √m), σ(√n + √m) of an m × n Gaussian matrix.

    For G with i.i.d. N(0, σ²) entries and m ≤ n (else swap), Gordon's inequality gives
    σ(√n − √m) ≤ E s_min ≤ E s_max ≤ σ(√n + √m), and with probability ≥ 1 − 2e^{−t²/2} both
    lie within σt of these values (Davidson & Szarek 2001; Vershynin 2012, Cor. 5.35). So
    G/(σ√n) is an isometry up to a factor 1 ± √(m/n): a *tall-and-thin* Gaussian matrix is
    a near-isometry up to scale.

    Raises:
        ValueError: for non-positive sizes or σ.
    """
    m, n, s = check_size("m", m), check_size("n", n), check_number("std", std, low=0.0)
    small, big = min(m, n), max(m, n)
    return s * (math.sqrt(big) - math.sqrt(small)), s * (math.sqrt(big) + math.sqrt(small))


def _gram_singular_values(G: jax.Array) -> jax.Array:
    """Singular values of a (..., m, n) stack, decreasing: √eig(G Gᵀ) on the smaller side.

    ``eigvalsh`` of the Gram matrix is several times faster than ``svd`` on a CPU and far less
    sensitive to a busy machine; it loses relative accuracy only for singular values below
    about √ε_float · s_max (≈ 3·10⁻⁴ s_max in float32), i.e. at the hard edge of a square matrix.
    """
    if G.shape[-2] > G.shape[-1]:
        G = jnp.swapaxes(G, -1, -2)
    lam = jnp.linalg.eigvalsh(G @ jnp.swapaxes(G, -1, -2))
    return jnp.sqrt(jnp.maximum(lam[..., ::-1], 0.0))


@partial(jax.jit, static_argnums=(1, 2, 3))
def _singular_values(key: jax.Array, m: int, n: int, n_draws: int) -> jax.Array:
    return _gram_singular_values(jax.random.normal(key, (n_draws, m, n)))


def gaussian_singular_values(key: jax.Array, m: int, n: int, n_draws: int = 1,
                             std: float = 1.0) -> jax.Array:
    """Singular values of ``n_draws`` independent m × n matrices with i.i.d. N(0, σ²) entries.

    One jitted call, batched over draws (square roots of the eigenvalues of the smaller Gram
    matrix, G Gᵀ or GᵀG, by ``eigvalsh``). Compare with :func:`singular_value_edges` (edges
    σ(√max ± √min)) and, after dividing by σ√max(m, n), with :func:`mp_singular_density`
    at r = min/max.

    Returns:
        ``(n_draws, min(m, n))`` singular values, each row in decreasing order.

    Raises:
        ValueError: for non-positive sizes or σ.
    """
    m, n = check_size("m", m), check_size("n", n)
    n_draws, s = check_size("n_draws", n_draws), check_number("std", std, low=0.0)
    return s * _singular_values(key, m, n, n_draws)


@partial(jax.jit, static_argnums=(2, 3))
def _singular_values_by_rows(key: jax.Array, ms: jax.Array, n: int, n_draws: int) -> jax.Array:
    # rows ≥ m zeroed: the nonzero singular values are those of the m × n block
    mask = (jnp.arange(n)[None, :] < ms[:, None])[:, None, :, None]
    G = jax.random.normal(key, (ms.shape[0], n_draws, n, n)) * mask
    return _gram_singular_values(G)


def singular_values_by_rows(key: jax.Array, ms: Sequence[int], n: int,
                            n_draws: int = 1) -> list[jax.Array]:
    """Singular values of Gaussian m × n matrices for several row counts m ≤ n, in one compiled call.

    Each m × n matrix is the first m rows of an n × n standard Gaussian matrix with the other
    rows zeroed, so every m shares one shape (one compilation, batched over m and draws); its
    nonzero singular values are those of the m × n block. Independent draws for every m.

    Returns:
        A list with one ``(n_draws, m)`` array per m (decreasing order), like
        :func:`gaussian_singular_values`.

    Raises:
        ValueError: for an empty ``ms``, non-positive sizes, or some m > n.
    """
    n, n_draws = check_size("n", n), check_size("n_draws", n_draws)
    ms = [check_size("m", m) for m in ms]
    if not ms:
        raise ValueError("ms must list at least one row count m")
    if max(ms) > n:
        raise ValueError(f"every m must be ≤ n = {n} (got {max(ms)}); for a wide matrix use its transpose")
    sv = _singular_values_by_rows(key, jnp.asarray(ms), n, n_draws)
    return [sv[i, :, :m] for i, m in enumerate(ms)]


def union_bound_epsilon(k: int, n: int, delta: float = 0.05) -> float:
    """The ε for which the union bound of the pattern lemma reaches failure probability δ.

    For W ∈ ℝ^{k×n} with i.i.d. N(0, 1/n) entries and a fixed v, each of the 2^k masked vectors
    Dv (D diagonal 0/1) satisfies |‖WᵀDv‖²/‖Dv‖² − 1| ≥ ε with probability ≤ 2e^{−nε²/8}
    (χ²_n tail, Wainwright 2019, Ex. 2.11, valid for ε < 1). Solving 2^{k+1} e^{−nε²/8} = δ:

        ε(k, n, δ) = √(8 ((k + 1) ln 2 + ln(1/δ)) / n),

    which is of order √(k/n): it is small only if the layer of width k is much narrower than
    the one of width n before it. Values ≥ 1 mean the bound says nothing.

    Raises:
        ValueError: for non-positive sizes or δ outside (0, 1).
    """
    k, n = check_size("k", k), check_size("n", n)
    delta = check_number("delta", delta, low=0.0)
    if delta >= 1:
        raise ValueError(f"delta is a failure probability and must lie in (0, 1), got {delta!r}")
    return math.sqrt(8 * ((k + 1) * math.log(2) + math.log(1 / delta)) / n)


# ---------------------------------------------------------------------------------------------
# 3. norm propagation
# ---------------------------------------------------------------------------------------------


def _layer_norms_one(params: MLPParams, X: jax.Array) -> jax.Array:
    sigma = get_activation(params.activation)
    q0 = jnp.sum(X * X, axis=-1) / X.shape[-1]
    _, zs = forward(params, X)
    qs = [jnp.ones_like(q0)] + [jnp.sum(sigma(z) ** 2, axis=-1) / z.shape[-1] / q0 for z in zs]
    return jnp.sqrt(jnp.stack(qs, axis=-1))




def layer_norms(params: MLPParams, X: Any) -> jax.Array:
    """Root-mean-square size of every layer relative to the input, for N networks at once.

        ρ_ℓ(x) = (‖h_ℓ‖/√n_ℓ) / (‖x‖/√d),    h_0 = x,  h_ℓ = σ(W_ℓ h_{ℓ−1}),

    i.e. ‖h_ℓ‖/‖x‖ when every width equals d. With He scaling and ReLU, E ρ_ℓ² = 1 at every
    layer (He et al. 2015); :func:`relu_norm_variance` gives its exact variance.

    Args:
        params: a stack of N networks (``nets.init_params(key, widths, n=N)``).
        X: ``(N, B, d)`` inputs, one batch per network.

    Returns:
        ``(N, B, L + 1)`` with ρ_0 = 1.

    Raises:
        ValueError: if ``params`` is not stacked, ``X`` has the wrong shape, holds NaN/inf,
            or has a zero row (ρ_ℓ is relative to ‖x‖, undefined at x = 0).
    """
    params, X = _stacked(params, X)
    zero = int(jnp.sum(jnp.all(X == 0, axis=-1)))
    if zero:
        raise ValueError(f"X has {zero} zero input(s): ρ_ℓ is measured relative to ‖x‖, which is 0 "
                         f"there; pass nonzero inputs (e.g. data.sphere)")
    # no while-loop in the kernel: one vmapped call is never slower than a loop over networks
    return map_networks(_layer_norms_one, params, X, strategy="vmap")


def sample_layer_norms(key: jax.Array, widths: Sequence[int], *, n_networks: int = 64,
                       n_inputs: int = 1, activation: str = "relu",
                       weight_scale: str | float = "he") -> jax.Array:
    """:func:`layer_norms` on fresh draws: ``n_networks`` bias-free networks with the given
    ``widths = [d, n_1, ..., n_L]``, each with ``n_inputs`` inputs uniform on the sphere of radius √d.

    Returns:
        ``(n_networks, n_inputs, L + 1)`` values of ρ_ℓ.

    Raises:
        ValueError: for bad widths or sizes, or an unknown activation or scale.
    """
    n_networks, n_inputs = check_size("n_networks", n_networks), check_size("n_inputs", n_inputs)
    k_net, k_x = jax.random.split(check_key(key))
    params = init_params(k_net, widths, activation=activation, weight_scale=weight_scale, n=n_networks)
    d = params.widths[0]
    X = sphere_batches(k_x, n_networks, n_inputs, d)
    return layer_norms(params, X)


@partial(jax.jit, static_argnums=(0, 2))
def _length_map(sigma: Activation, scale: jax.Array, depth: int, q0: jax.Array) -> jax.Array:
    return jnp.sqrt(quadrature.length_map(sigma, scale, depth, q0) / q0)


def length_map(activation: str | Activation, weight_scale: str | float, depth: int,
               q0: float = 1.0) -> jax.Array:
    """Infinite-width prediction of :func:`layer_norms`: iterate the length map.

        q_ℓ = E σ(s √q_{ℓ−1} Z)²,   Z ~ N(0, 1),   q_ℓ = ‖h_ℓ‖²/n_ℓ,

    for weights N(0, s²/fan_in) (Poole et al. 2016). ReLU with s² = 2 (He) gives q_ℓ = q_0;
    ReLU with s² = 1 halves q at each layer; tanh with s² = 1 shrinks it slowly. The
    recursion is :func:`mini_adv.quadrature.length_map` (Gauss–Hermite quadrature, the rule
    that chapter 4's mean-field moments use too).

    Args:
        activation: name or callable. weight_scale: ``"he"``, ``"lecun"`` or s > 0.
        depth: number of layers L. q0: ‖x‖²/d (1 on the book's sphere).

    Returns:
        ``(L + 1,)`` predicted ρ_ℓ = √(q_ℓ/q_0).

    Raises:
        ValueError: for an unknown activation or scale, non-positive depth or q0.
    """
    sigma = get_activation(activation)
    s = resolve_weight_scale(weight_scale)
    depth, q0 = check_size("depth", depth), check_number("q0", q0, low=0.0)
    return _length_map(sigma, jnp.asarray(s), depth, jnp.asarray(q0))


def relu_norm_variance(hidden_widths: Sequence[int]) -> float:
    """Exact variance of ρ_L² = (‖h_L‖²/n_L)/(‖x‖²/d) for a He-initialised bias-free ReLU net.

    Given h_{ℓ−1} ≠ 0, the pre-activations W_ℓ h_{ℓ−1} are i.i.d. N(0, 2‖h_{ℓ−1}‖²/n_{ℓ−1}), so
    the ratios R_ℓ = ρ_ℓ²/ρ_{ℓ−1}² are independent with E R_ℓ = 1 and Var R_ℓ = 5/n_ℓ (from
    E relu(√2 Z)² = 1, E relu(√2 Z)⁴ = 6). Hence E ρ_L² = 1 and

        Var ρ_L² = Π_ℓ (1 + 5/n_ℓ) − 1 ≈ 5 Σ_ℓ 1/n_ℓ,

    the "sum of reciprocal widths" of Hanin (2018).

    Raises:
        ValueError: for an empty list or non-positive widths.
    """
    widths = list(hidden_widths)
    if not widths:
        raise ValueError("hidden_widths must list at least one hidden width [n_1, ..., n_L]")
    return float(np.prod([1 + 5 / check_size("hidden width", n) for n in widths]) - 1)


# ---------------------------------------------------------------------------------------------
# 4. gradients of random networks
# ---------------------------------------------------------------------------------------------


@struct.dataclass
class GradientStats:
    """f, ‖∇f‖ and cos∠(x, ∇f) for N independent networks × B inputs each (all ``(N, B)``).

    Attributes:
        f: f(x). grad_norm: ‖∇f(x)‖. x_norm: ‖x‖.
        cos: ⟨∇f(x), x⟩/(‖∇f(x)‖‖x‖), computed directly (not via Euler's identity);
            NaN where ∇f(x) = 0 (a dead network or input: no direction), counted by
            ``summary()["dead"]``.
        d: the input dimension (static).
    """

    f: jax.Array
    grad_norm: jax.Array
    x_norm: jax.Array
    cos: jax.Array
    d: int = struct.field(pytree_node=False)

    @property
    def relative_linear_distance(self) -> jax.Array:
        """|f|/(‖∇f‖‖x‖): the linearised flip distance over ‖x‖ (``inf`` where ∇f = 0)."""
        return jnp.where(self.grad_norm > 0, jnp.abs(self.f) / (self.grad_norm * self.x_norm), jnp.inf)

    def summary(self) -> dict[str, float]:
        """Statistics of one sample.

        Keys: ``d`` (an int); ``sqrt_d_mean_abs_cos`` = √d · mean |cos| (prediction
        √(2/π) ≈ 0.798) and ``se`` its standard error from the spread of the per-network means
        (networks are the independent replicates, :func:`mini_adv.stats.network_mean`);
        ``mean_abs_cos``; ``grad_norm_mean``; ``grad_norm_cv`` = std/mean of ‖∇f‖ over all
        draws (``inf`` for a single draw); ``dead`` = fraction of draws with ∇f = 0, which the
        cosine statistics leave out.

        Raises:
            ValueError: if ∇f = 0 at every draw (every network dead): no cosine is defined.
        """
        cos = np.abs(np.asarray(self.cos))
        gn = np.asarray(self.grad_norm)
        if not np.isfinite(cos).any():
            raise ValueError(f"∇f(x) = 0 at all {cos.size} draws (dead networks): cos∠(x, ∇f) is "
                             f"undefined; use other networks (e.g. another key or weight scale)")
        m = network_mean(cos)
        sqrt_d = math.sqrt(self.d)
        return {
            "d": int(self.d),
            "mean_abs_cos": m.mean,
            "sqrt_d_mean_abs_cos": sqrt_d * m.mean,
            "se": sqrt_d * m.se,
            "grad_norm_mean": float(gn.mean()),
            "grad_norm_cv": float(gn.std(ddof=1) / gn.mean()) if gn.size > 1 else math.inf,
            "dead": float(np.mean(gn == 0)),
        }


def _gradient_stats_one(params: MLPParams, X: jax.Array) -> tuple[jax.Array, ...]:
    f, g = value_and_input_grad_kernel(params, X)
    gn, xn = jnp.linalg.norm(g, axis=-1), jnp.linalg.norm(X, axis=-1)
    cos = jnp.where(gn > 0, jnp.sum(g * X, axis=-1) / (jnp.where(gn > 0, gn, 1.0) * xn), jnp.nan)
    return f, gn, xn, cos


def gradient_stats(params: MLPParams, X: Any) -> GradientStats:
    """f(x), ‖∇f(x)‖ and cos∠(x, ∇f(x)) for N networks × B inputs, in one jitted call.

    For a bias-free ReLU network Euler's identity f(x) = ⟨∇f(x), x⟩ makes
    |f|/(‖∇f‖‖x‖) = |cos∠(x, ∇f)|, and for random weights independent of x,
    √d · cos → N(0, 1): the gradient is as orthogonal to x as a random vector
    (Daniely & Shacham 2020, the first step of their proof).

    Args:
        params: a stack of N networks. X: ``(N, B, d)`` inputs, one batch per network.

    Returns:
        A :class:`GradientStats` with ``(N, B)`` arrays.

    Raises:
        ValueError: for unstacked params, a wrong shape, non-finite inputs, or a zero input
            (its cosine is undefined).
    """
    params, X = _stacked(params, X)
    if bool(jnp.any(jnp.all(X == 0, axis=-1))):
        raise ValueError("X has a zero input: cos∠(x, ∇f) is undefined at x = 0; pass nonzero inputs")
    f, gn, xn, cos = map_networks(_gradient_stats_one, params, X, strategy="vmap")  # no loops
    return GradientStats(f=f, grad_norm=gn, x_norm=xn, cos=cos, d=params.widths[0])


def _widths(d: int, hidden: Sequence[float]) -> list[int]:
    d = check_size("d", d)
    try:
        hidden = tuple(float(m) for m in hidden)
    except (TypeError, ValueError):
        raise ValueError(f"hidden must be a sequence of positive width multipliers, got {hidden!r}") from None
    if not hidden or any(not (0 < m < math.inf) for m in hidden):
        raise ValueError(f"hidden must be a non-empty sequence of positive width multipliers, got {hidden!r}")
    return [d] + [max(1, math.ceil(m * d)) for m in hidden]


def sample_gradient_stats(key: jax.Array, d: int, *, hidden: Sequence[float] = (1.0, 1.0),
                          n_networks: int = 64, n_inputs: int = 4, activation: str = "relu",
                          weight_scale: str | float = "he") -> GradientStats:
    """:func:`gradient_stats` on fresh draws: ``n_networks`` bias-free networks of widths
    ``[d, ⌈m₁d⌉, ⌈m₂d⌉, ...]`` (``hidden`` = (m₁, m₂, ...)), each with ``n_inputs`` fresh
    inputs uniform on the sphere of radius √d.

    Raises:
        ValueError: for non-positive sizes or multipliers, or an unknown activation or scale.
    """
    widths = _widths(d, hidden)
    n_networks, n_inputs = check_size("n_networks", n_networks), check_size("n_inputs", n_inputs)
    k_net, k_x = jax.random.split(check_key(key))
    params = init_params(k_net, widths, activation=activation, weight_scale=weight_scale, n=n_networks)
    X = sphere_batches(k_x, n_networks, n_inputs, d)
    return gradient_stats(params, X)


@dataclasses.dataclass(frozen=True)
class CosineScaling:
    """:func:`cosine_scaling`: the summaries of :class:`GradientStats` at several d.

    Attributes:
        d: ``(D,)`` int dimensions.
        mean_abs_cos, sqrt_d_mean_abs_cos, se, grad_norm_mean, grad_norm_cv, dead: ``(D,)``
            the keys of :meth:`GradientStats.summary`, one per d.
        slope, constant: the fit mean|cos| ≈ C·d^slope (prediction −1/2 and √(2/π)); ``None``
            for a single d (no slope to fit).
        constant_half: C with the slope held at −1/2 (geometric mean of √d · mean|cos|),
            defined for one d too.
        raw: the :class:`GradientStats` samples, one per d.
    """

    d: np.ndarray
    mean_abs_cos: np.ndarray
    sqrt_d_mean_abs_cos: np.ndarray
    se: np.ndarray
    grad_norm_mean: np.ndarray
    grad_norm_cv: np.ndarray
    dead: np.ndarray
    slope: float | None
    constant: float | None
    constant_half: float
    raw: tuple[GradientStats, ...]


def cosine_scaling(key: jax.Array, dims: Sequence[int], **kwargs: Any) -> CosineScaling:
    """Run :func:`sample_gradient_stats` at each d in ``dims``, with the key ``fold_in(key, d)``.

    Args:
        key: PRNG key. dims: the dimensions d (one or more).
        **kwargs: passed to :func:`sample_gradient_stats`.

    Returns:
        A :class:`CosineScaling` (``slope``/``constant`` are ``None`` for a single d).

    Raises:
        ValueError: for an empty or invalid ``dims`` (and whatever
            :func:`sample_gradient_stats` or :meth:`GradientStats.summary` raises).
    """
    check_key(key)
    dims = [check_size("d", d) for d in dims]
    if not dims:
        raise ValueError("dims must be a non-empty sequence of dimensions")
    raw = tuple(sample_gradient_stats(jax.random.fold_in(key, d), d, **kwargs) for d in dims)
    sums = [r.summary() for r in raw]
    cols = {k: np.array([s[k] for s in sums]) for k in sums[0]}
    slope = constant = None
    if len(dims) >= 2:
        slope, constant = fit_power_law(cols["d"], cols["mean_abs_cos"])
    return CosineScaling(**cols, slope=slope, constant=constant,
                         constant_half=float(np.exp(np.mean(np.log(cols["sqrt_d_mean_abs_cos"])))),
                         raw=raw)


# ---------------------------------------------------------------------------------------------
# 5. the gradient on a ball around x
# ---------------------------------------------------------------------------------------------


def _preactivations(params: MLPParams, x: jax.Array) -> tuple[jax.Array, ...]:
    return forward(params, x)[1]


def _ball_one(params: MLPParams, X: jax.Array, U: jax.Array, radius: jax.Array
              ) -> tuple[jax.Array, ...]:
    grad = jax.vmap(jax.grad(lambda x: apply(params, x)))
    B, R, d = U.shape
    Y = (X[:, None, :] + radius * U).reshape(B * R, d)
    g0, g1 = grad(X), grad(Y).reshape(B, R, d)
    n0, n1 = jnp.linalg.norm(g0, axis=-1), jnp.linalg.norm(g1, axis=-1)
    safe0 = jnp.where(n0 > 0, n0, 1.0)[:, None]  # n0 = 0 is rejected by gradient_on_ball
    ratio = n1 / safe0
    cos = jnp.where(n1 > 0, jnp.sum(g1 * g0[:, None, :], axis=-1) / (jnp.where(n1 > 0, n1, 1.0) * safe0),
                    0.0)
    z0 = jnp.concatenate(_preactivations(params, X), axis=-1)
    z1 = jnp.concatenate(_preactivations(params, Y), axis=-1).reshape(B, R, -1)
    changed = jnp.mean((z0[:, None, :] > 0) != (z1 > 0), axis=-1)
    return ratio, cos, changed, n0


@struct.dataclass
class BallGradients:
    """:func:`gradient_on_ball`: how ∇f changes from x to y = x + r u (each ``(N, B, R)``).

    Attributes:
        norm_ratio: ‖∇f(y)‖/‖∇f(x)‖.
        cos: cos∠(∇f(x), ∇f(y)); 0 where ∇f(y) = 0 (no direction there, the ratio is 0).
        pattern_change: fraction of hidden units (all layers) whose sign differs at x and y.
    """

    norm_ratio: jax.Array
    cos: jax.Array
    pattern_change: jax.Array


def gradient_on_ball(params: MLPParams, X: Any, U: Any, radius: float) -> BallGradients:
    """How ∇f changes between x and points y = x + r u at distance r (N networks at once).

    Measures, for each network, input x and unit direction u:

    * ``norm_ratio`` = ‖∇f(y)‖/‖∇f(x)‖ (must stay ≥ some g_min > 0 on the whole ball for the
      gradient-flow argument of Daniely & Shacham 2020);
    * ``cos`` = cos∠(∇f(x), ∇f(y));
    * ``pattern_change`` = fraction of hidden units (all layers) whose sign differs between
      x and y: every y sees its own activation pattern, hence its own linear piece.

    Args:
        params: stack of N networks. X: ``(N, B, d)``. U: ``(N, B, R, d)`` unit directions.
        radius: r > 0, in the units of x (the book uses r = ρ‖x‖/√d).

    Returns:
        A :class:`BallGradients` with ``norm_ratio``, ``cos`` and ``pattern_change``, each
        ``(N, B, R)``.

    Raises:
        ValueError: for unstacked params, wrong shapes, non-finite inputs, r ≤ 0, or
            ∇f(x) = 0 at some x (a dead network or input: the ratio and the cosine relative
            to ∇f(x) are undefined there).
    """
    params, X = _stacked(params, X)
    if not hasattr(U, "shape"):
        U = np.asarray(U)
    if U.ndim != 4 or U.shape[:2] != X.shape[:2] or U.shape[3] != X.shape[2]:
        raise ValueError(f"U must have shape (N, B, R, d) = {X.shape[:2] + ('R', X.shape[2])}; "
                         f"got {tuple(U.shape)}")
    U = jnp.asarray(U).astype(X.dtype)
    check_finite("U", U)
    r = check_number("radius", radius, low=0.0)
    radii = jnp.full((X.shape[0],), r, dtype=X.dtype)
    ratio, cos, changed, n0 = map_networks(_ball_one, params, X, U, radii, strategy="vmap")
    dead = int(jnp.sum(n0 == 0))
    if dead:
        raise ValueError(f"∇f(x) = 0 at {dead} of {n0.size} inputs (dead networks or inputs): the "
                         f"gradient's change relative to ∇f(x) is undefined there; drop those "
                         f"networks or inputs, or use other draws")
    return BallGradients(norm_ratio=ratio, cos=cos, pattern_change=changed)

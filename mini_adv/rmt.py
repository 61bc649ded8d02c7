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
  :func:`gradient_on_ball`, :func:`fit_power_law`.
* **Figures** — the chapter's plots, drawn on a figure or axes the caller creates:
  :func:`plot_random_vectors`, :func:`plot_mp_histogram`, :func:`plot_norm_propagation`,
  :func:`plot_cosine_scaling`, :func:`plot_isometry_distortion`.

Kernels are pure functions of arrays (or of a stacked :class:`~mini_adv.nets.MLPParams` of N
independent networks from ``nets.init_params(..., n=N)``), jitted once per shape and vmapped
over draws; the public wrappers validate their arguments and raise ``ValueError`` with what to
change. Inputs on the same network are correlated: statistics that need independent replicates
use many networks.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from mini_adv.activations import Activation, get_activation
from mini_adv.data import _check_size, sphere
from mini_adv.gradients import value_and_input_grad_kernel
from mini_adv.nets import MLPParams, _resolve_scale, apply, check_finite, init_params
from mini_adv.figures.style import CYCLE, PALETTE

# ---------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------


def _check_ratio(ratio: Any) -> float:
    try:
        r = float(ratio)
    except (TypeError, ValueError):
        raise ValueError(f"ratio must be a number in (0, 1], got {ratio!r}") from None
    if not (0.0 < r <= 1.0):  # also rejects NaN
        raise ValueError(
            f"ratio = m/n must lie in (0, 1] (the smaller dimension over the larger one); got "
            f"{ratio!r}. For a wide matrix pass min(m, n)/max(m, n): the nonzero spectrum is the same")
    return r


def _check_positive(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}") from None
    if not (0.0 < v < math.inf):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def _check_stacked(params: MLPParams) -> None:
    if not isinstance(params, MLPParams) or params.readout.ndim != 2:
        raise ValueError("params must be a stack of N networks, as returned by "
                         "nets.init_params(key, widths, n=N)")


def _check_inputs(params: MLPParams, X: Any) -> jax.Array:
    X = jnp.asarray(X)
    N, d = params.readout.shape[0], params.widths[0]
    if X.ndim != 3 or X.shape[0] != N or X.shape[2] != d or X.shape[1] == 0:
        raise ValueError(f"X must have shape (N, B, d) = ({N}, B, {d}) with B ≥ 1 (one batch of "
                         f"inputs per network); got shape {tuple(X.shape)}")
    check_finite("X", X)
    return X


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
    return _cosines_and_norms(key, _check_size("d", d), _check_size("n", n))


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
        ValueError: for r outside (0, 1] (or NaN) or a non-positive σ².
    """
    r, v = _check_ratio(ratio), _check_positive("var", var)
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
    r, v = _check_ratio(ratio), _check_positive("var", var)
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
    m, n, s = _check_size("m", m), _check_size("n", n), _check_positive("std", std)
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
    m, n = _check_size("m", m), _check_size("n", n)
    n_draws, s = _check_size("n_draws", n_draws), _check_positive("std", std)
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
    n, n_draws = _check_size("n", n), _check_size("n_draws", n_draws)
    ms = [_check_size("m", m) for m in ms]
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
    k, n = _check_size("k", k), _check_size("n", n)
    delta = _check_positive("delta", delta)
    if delta >= 1:
        raise ValueError(f"delta is a failure probability and must lie in (0, 1), got {delta!r}")
    return math.sqrt(8 * ((k + 1) * math.log(2) + math.log(1 / delta)) / n)


# ---------------------------------------------------------------------------------------------
# 3. norm propagation
# ---------------------------------------------------------------------------------------------


def _layer_norms_one(params: MLPParams, X: jax.Array) -> jax.Array:
    sigma = get_activation(params.activation)
    q0 = jnp.sum(X * X, axis=-1) / X.shape[-1]
    qs, h = [jnp.ones_like(q0)], X
    for i, k in enumerate(params.kernels):
        h = h @ k
        if params.biases is not None:
            h = h + params.biases[i]
        h = sigma(h)
        qs.append(jnp.sum(h * h, axis=-1) / h.shape[-1] / q0)
    return jnp.sqrt(jnp.stack(qs, axis=-1))


_layer_norms = jax.jit(jax.vmap(_layer_norms_one))


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
        ValueError: if ``params`` is not stacked, ``X`` has the wrong shape, or holds NaN/inf.
    """
    _check_stacked(params)
    return _layer_norms(params, _check_inputs(params, X))


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
    n_networks, n_inputs = _check_size("n_networks", n_networks), _check_size("n_inputs", n_inputs)
    k_net, k_x = jax.random.split(key)
    params = init_params(k_net, widths, activation=activation, weight_scale=weight_scale, n=n_networks)
    d = params.widths[0]
    X = sphere(k_x, n_networks * n_inputs, d).reshape(n_networks, n_inputs, d)
    return layer_norms(params, X)


_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(101)
_GH_WEIGHTS = _GH_WEIGHTS / math.sqrt(2 * math.pi)  # E φ(Z) ≈ Σ w_i φ(z_i), Z ~ N(0, 1)


@partial(jax.jit, static_argnums=(0, 2))
def _length_map(sigma: Activation, scale: jax.Array, depth: int, q0: jax.Array) -> jax.Array:
    z, w = jnp.asarray(_GH_NODES), jnp.asarray(_GH_WEIGHTS)

    def step(q, _):
        q_next = jnp.sum(w * sigma(scale * jnp.sqrt(q) * z) ** 2)
        return q_next, q_next

    _, qs = jax.lax.scan(step, q0, None, length=depth)
    return jnp.sqrt(jnp.concatenate([q0[None], qs]) / q0)


def length_map(activation: str | Activation, weight_scale: str | float, depth: int,
               q0: float = 1.0) -> jax.Array:
    """Infinite-width prediction of :func:`layer_norms`: iterate the length map.

        q_ℓ = E σ(s √q_{ℓ−1} Z)²,   Z ~ N(0, 1),   q_ℓ = ‖h_ℓ‖²/n_ℓ,

    for weights N(0, s²/fan_in) (Poole et al. 2016). ReLU with s² = 2 (He) gives q_ℓ = q_0;
    ReLU with s² = 1 halves q at each layer; tanh with s² = 1 shrinks it slowly. The
    expectation uses 101-point Gauss–Hermite quadrature; the loop is a ``lax.scan``.

    Args:
        activation: name or callable. weight_scale: ``"he"``, ``"lecun"`` or s > 0.
        depth: number of layers L. q0: ‖x‖²/d (1 on the book's sphere).

    Returns:
        ``(L + 1,)`` predicted ρ_ℓ = √(q_ℓ/q_0).

    Raises:
        ValueError: for an unknown activation or scale, non-positive depth or q0.
    """
    sigma = get_activation(activation)
    s = _resolve_scale(weight_scale)
    depth, q0 = _check_size("depth", depth), _check_positive("q0", q0)
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
    return float(np.prod([1 + 5 / _check_size("hidden width", n) for n in widths]) - 1)


# ---------------------------------------------------------------------------------------------
# 4. gradients of random networks
# ---------------------------------------------------------------------------------------------


@struct.dataclass
class GradientStats:
    """f, ‖∇f‖ and cos∠(x, ∇f) for N independent networks × B inputs each (all ``(N, B)``).

    Attributes:
        f: f(x). grad_norm: ‖∇f(x)‖. x_norm: ‖x‖.
        cos: ⟨∇f(x), x⟩/(‖∇f(x)‖‖x‖), computed directly (not via Euler's identity);
            NaN where ∇f(x) = 0 (a dead network).
    """

    f: jax.Array
    grad_norm: jax.Array
    x_norm: jax.Array
    cos: jax.Array

    @property
    def d(self) -> int:
        """The input dimension (inputs on the sphere of radius √d)."""
        return int(round(float(jnp.mean(self.x_norm)) ** 2))

    @property
    def relative_linear_distance(self) -> jax.Array:
        """|f|/(‖∇f‖‖x‖): the linearised flip distance over ‖x‖ (``inf`` where ∇f = 0)."""
        return jnp.where(self.grad_norm > 0, jnp.abs(self.f) / (self.grad_norm * self.x_norm), jnp.inf)

    def summary(self) -> dict[str, float]:
        """Statistics of one sample.

        Keys: ``d``; ``sqrt_d_mean_abs_cos`` = √d · mean |cos| (prediction √(2/π) ≈ 0.798)
        and ``se`` its standard error from the spread of the per-network means (networks are
        the independent replicates); ``mean_abs_cos``; ``grad_norm_mean``; ``grad_norm_cv``
        = std/mean of ‖∇f‖ over all draws; ``dead`` = fraction of draws with ∇f = 0.
        """
        d = self.d
        cos = np.abs(np.asarray(self.cos))
        per_net = np.nanmean(cos, axis=1) if np.isfinite(cos).any() else np.array([np.nan])
        gn = np.asarray(self.grad_norm)
        return {
            "d": float(d),
            "mean_abs_cos": float(np.nanmean(cos)),
            "sqrt_d_mean_abs_cos": float(math.sqrt(d) * np.nanmean(cos)),
            "se": float(math.sqrt(d) * np.nanstd(per_net, ddof=1) / math.sqrt(per_net.size))
            if per_net.size > 1 else math.inf,
            "grad_norm_mean": float(gn.mean()),
            "grad_norm_cv": float(gn.std(ddof=1) / gn.mean()) if gn.size > 1 and gn.mean() > 0 else math.inf,
            "dead": float(np.mean(gn == 0)),
        }


def _gradient_stats_one(params: MLPParams, X: jax.Array) -> GradientStats:
    f, g = value_and_input_grad_kernel(params, X)
    gn, xn = jnp.linalg.norm(g, axis=-1), jnp.linalg.norm(X, axis=-1)
    cos = jnp.where(gn > 0, jnp.sum(g * X, axis=-1) / (jnp.where(gn > 0, gn, 1.0) * xn), jnp.nan)
    return GradientStats(f=f, grad_norm=gn, x_norm=xn, cos=cos)


_gradient_stats = jax.jit(jax.vmap(_gradient_stats_one))


def gradient_stats(params: MLPParams, X: Any) -> GradientStats:
    """f(x), ‖∇f(x)‖ and cos∠(x, ∇f(x)) for N networks × B inputs, in one jitted call.

    For a bias-free ReLU network Euler's identity f(x) = ⟨∇f(x), x⟩ makes
    |f|/(‖∇f‖‖x‖) = |cos∠(x, ∇f)|, and for random weights independent of x,
    √d · cos → N(0, 1): the gradient is as orthogonal to x as a random vector
    (Daniely & Shacham 2020, the first step of their proof).

    Args:
        params: a stack of N networks. X: ``(N, B, d)`` inputs, one batch per network.

    Raises:
        ValueError: for unstacked params, a wrong shape, or non-finite inputs.
    """
    _check_stacked(params)
    return _gradient_stats(params, _check_inputs(params, X))


def _widths(d: int, hidden: Sequence[float]) -> list[int]:
    d = _check_size("d", d)
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
    n_networks, n_inputs = _check_size("n_networks", n_networks), _check_size("n_inputs", n_inputs)
    k_net, k_x = jax.random.split(key)
    params = init_params(k_net, widths, activation=activation, weight_scale=weight_scale, n=n_networks)
    X = sphere(k_x, n_networks * n_inputs, d).reshape(n_networks, n_inputs, d)
    return gradient_stats(params, X)


def fit_power_law(x: Any, y: Any) -> tuple[float, float]:
    """Least-squares fit of log y = log C + a log x: returns ``(a, C)`` with y ≈ C x^a.

    Raises:
        ValueError: for fewer than two points, different lengths, or non-positive/non-finite values.
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.size != y.size or x.size < 2:
        raise ValueError(f"x and y must have the same length ≥ 2; got {x.size} and {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(x > 0) and np.all(y > 0)):
        raise ValueError("a power-law fit needs positive finite x and y (it works on log scales)")
    a, b = np.polyfit(np.log(x), np.log(y), 1)
    return float(a), float(math.exp(b))


def cosine_scaling(key: jax.Array, dims: Sequence[int], **kwargs: Any) -> dict[str, Any]:
    """Run :func:`sample_gradient_stats` at each d in ``dims`` (fresh draws each).

    Returns:
        A dict of arrays, one entry per key of :meth:`GradientStats.summary`, plus
        ``"raw"`` (the list of :class:`GradientStats`), ``"slope"`` and ``"constant"`` of the
        fit mean|cos| ≈ C d^slope (prediction: slope −1/2, C = √(2/π)), and
        ``"constant_half"``: C with the slope held at −1/2 (geometric mean of √d · mean|cos|).

    Raises:
        ValueError: for an empty or invalid ``dims`` (and whatever
            :func:`sample_gradient_stats` raises).
    """
    dims = list(dims)
    if not dims:
        raise ValueError("dims must be a non-empty sequence of dimensions")
    raw = [sample_gradient_stats(k, _check_size("d", d), **kwargs)
           for k, d in zip(jax.random.split(key, len(dims)), dims)]
    sums = [r.summary() for r in raw]
    out: dict[str, Any] = {k: np.array([s[k] for s in sums]) for k in sums[0]}
    out["raw"] = raw
    if len(dims) >= 2:
        out["slope"], out["constant"] = fit_power_law(out["d"], out["mean_abs_cos"])
        out["constant_half"] = float(np.exp(np.mean(np.log(out["sqrt_d_mean_abs_cos"]))))
    return out


# ---------------------------------------------------------------------------------------------
# 5. the gradient on a ball around x
# ---------------------------------------------------------------------------------------------


def _preactivations(params: MLPParams, x: jax.Array) -> list[jax.Array]:
    sigma = get_activation(params.activation)
    zs, h = [], x
    for i, k in enumerate(params.kernels):
        z = h @ k
        if params.biases is not None:
            z = z + params.biases[i]
        zs.append(z)
        h = sigma(z)
    return zs


def _ball_one(params: MLPParams, X: jax.Array, U: jax.Array, radius: jax.Array):
    grad = jax.vmap(jax.grad(lambda x: apply(params, x)))
    B, R, d = U.shape
    Y = (X[:, None, :] + radius * U).reshape(B * R, d)
    g0, g1 = grad(X), grad(Y).reshape(B, R, d)
    n0, n1 = jnp.linalg.norm(g0, axis=-1), jnp.linalg.norm(g1, axis=-1)
    ratio = n1 / n0[:, None]
    cos = jnp.sum(g1 * g0[:, None, :], axis=-1) / (n1 * n0[:, None])
    z0 = jnp.concatenate(_preactivations(params, X), axis=-1)
    z1 = jnp.concatenate(_preactivations(params, Y), axis=-1).reshape(B, R, -1)
    changed = jnp.mean((z0[:, None, :] > 0) != (z1 > 0), axis=-1)
    return ratio, cos, changed


_ball = jax.jit(jax.vmap(_ball_one, in_axes=(0, 0, 0, None)))


def gradient_on_ball(params: MLPParams, X: Any, U: Any, radius: float) -> dict[str, jax.Array]:
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
        dict with ``norm_ratio``, ``cos`` and ``pattern_change``, each ``(N, B, R)``.

    Raises:
        ValueError: for unstacked params, wrong shapes, non-finite inputs, or r ≤ 0.
    """
    _check_stacked(params)
    X = _check_inputs(params, X)
    U = jnp.asarray(U)
    if U.ndim != 4 or U.shape[:2] != X.shape[:2] or U.shape[3] != X.shape[2]:
        raise ValueError(f"U must have shape (N, B, R, d) = {X.shape[:2] + ('R', X.shape[2])}; "
                         f"got {tuple(U.shape)}")
    check_finite("U", U)
    r = _check_positive("radius", radius)
    ratio, cos, changed = _ball(params, X, U, jnp.asarray(r))
    return {"norm_ratio": ratio, "cos": cos, "pattern_change": changed}


# ---------------------------------------------------------------------------------------------
# 6. chapter 2's figures
# ---------------------------------------------------------------------------------------------


def _log_ticks(ax: Axes, values: Sequence[float]) -> None:
    """Label a log x-axis at the measured values only."""
    ax.set_xticks(list(values), [f"{v:g}" for v in values])
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_random_vectors(fig: Figure, samples: Mapping[int, tuple[Any, Any]]
                        ) -> tuple[Axes, Axes]:
    """Draw the angles and lengths of independent Gaussian vectors, one step histogram per d.

    Left panel: histograms of cos∠(g, g') with the N(0, 1/d) density at the largest d
    (dashed). Right panel: histograms of ‖g‖/√d with the predicted value 1 (dashed).

    Args:
        fig: an empty figure; two side-by-side axes are added to it.
        samples: ``{d: (cos, norm)}`` as returned by :func:`cosines_and_norms`, in the order
            the curves should be drawn (colours follow :data:`~mini_adv.plotting.CYCLE`).

    Returns:
        The two axes ``(angles, lengths)``.
    """
    ax1, ax2 = fig.subplots(1, 2)
    step = dict(density=True, histtype="step", lw=1.8)
    for i, (d, (cos, norm)) in enumerate(samples.items()):
        ax1.hist(np.asarray(cos), bins=np.linspace(-1, 1, 81), **step,
                 color=CYCLE[i], label=f"d = {d}")
        ax2.hist(np.asarray(norm), bins=np.linspace(0, 2.2, 111), **step,
                 color=CYCLE[i], label=f"d = {d}")
    d_max = max(samples)
    t = np.linspace(-1, 1, 401)
    ax1.plot(t, math.sqrt(d_max / (2 * math.pi)) * np.exp(-d_max * t**2 / 2),
             "--", color=PALETTE["theory"], label=rf"$\mathcal{{N}}(0, 1/d)$, d = {d_max}")
    ax1.set(xlabel=r"$\cos\angle(g, g')$", ylabel="density", ylim=(0, 25),
            title="(a) angles between independent vectors")
    ax2.axvline(1.0, ls="--", color=PALETTE["theory"], label=r"$\|g\|/\sqrt{d} = 1$")
    ax2.set(xlabel=r"$\|g\|/\sqrt{d}$", ylabel="density", ylim=(0, 25), title="(b) lengths")
    ax1.legend(loc="upper left", fontsize=9)
    ax2.legend(loc="upper left", fontsize=9)
    return ax1, ax2


def plot_mp_histogram(ax: Axes, sv: Any, n: int, r: float, *, ymax: float | None = None) -> None:
    """Draw a histogram of s/√n against the Marchenko–Pastur density and its edges 1 ± √r.

    Args:
        ax: the axes to draw on (no title is set: the caller adds one).
        sv: singular values of Gaussian m × n matrices, ``(draws, m)`` as returned by
            :func:`gaussian_singular_values` (entries N(0, 1)).
        n: the number of columns (the values are divided by √n).
        r: the ratio m/n of the Marchenko–Pastur law (dashed) and of the edges (dotted).
        ymax: upper y-limit; default 1.35 × the maximum of the density on the plotted range.
    """
    sv = np.asarray(sv)
    s = sv.ravel() / math.sqrt(n)
    bins = np.linspace(max(0, 0.9 - math.sqrt(r)), 1.1 + math.sqrt(r), 50)
    ax.hist(s, bins=bins, density=True, alpha=0.6, color=PALETTE["random"],
            label=f"singular values of $G/\\sqrt{{n}}$ ({sv.shape[0]} draws)")
    grid = np.linspace(0, 2.05, 600)
    dens = np.asarray(mp_singular_density(grid, r))
    ax.plot(grid, dens, "--", color=PALETTE["theory"], label="Marchenko–Pastur density")
    for e in (1 - math.sqrt(r), 1 + math.sqrt(r)):
        ax.axvline(e, ls=":", color=PALETTE["gradient"])
    ax.plot([], [], ":", color=PALETTE["gradient"], label=r"edges $1\pm\sqrt{m/n}$")
    top = 1.35 * float(np.max(dens)) if ymax is None else ymax
    ax.set(xlabel=r"singular value $s/\sqrt{n}$", ylabel="density", xlim=(0, 2.05),
           ylim=(0, top))
    ax.legend(loc="upper right", fontsize=9)


def plot_norm_propagation(fig: Figure, rho: Mapping[int, Any], sd_measured: Any,
                          sd_predicted: Any, variants: Sequence[tuple[str, str | float, str]],
                          variant_rho: Sequence[Any], variant_width: int
                          ) -> tuple[Axes, Axes, Axes]:
    """Draw the three-panel figure of norms through random layers (proposition on He scaling).

    (a) top, full width: median and 10–90 % band of ρ_ℓ = ‖h_ℓ‖/‖x‖ against the layer ℓ,
    for every other width of ``rho``, with the prediction 1 (dashed);
    (b) bottom left: the measured sd of ρ_L² against the width (log–log, with the fitted
    slope in the legend) and the exact prediction √(∏(1 + 5/n) − 1) (dashed);
    (c) bottom right: mean ρ_ℓ for other activations / weight scales (dots) against the
    infinite-width length map (:func:`length_map`, dashed).

    Args:
        fig: an empty figure (the book uses ``figsize=(10, 8)``).
        rho: ``{width: (N, L + 1) values of ρ_ℓ}`` for He-ReLU networks (one input each).
        sd_measured, sd_predicted: sd of ρ_L² per width of ``rho``, measured and predicted
            (:func:`relu_norm_variance`).
        variants: ``(activation, weight_scale, legend label)`` for panel (c).
        variant_rho: one ``(N, L + 1)`` array of ρ_ℓ per variant, same depth as ``rho``.
        variant_width: the width of the networks in ``variant_rho`` (for the title).

    Returns:
        The axes of panels (a), (b), (c).
    """
    widths = list(rho)
    L = np.asarray(rho[widths[0]]).shape[1] - 1
    grid = fig.add_gridspec(2, 2)
    ax1 = fig.add_subplot(grid[0, :])
    ax2, ax3 = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    layers = np.arange(L + 1)
    for i, w in enumerate(widths[::2]):
        q = np.asarray(rho[w])
        ax1.plot(layers, np.median(q, 0), "o-", color=CYCLE[i], ms=4, label=f"width {w}")
        ax1.fill_between(layers, *np.percentile(q, [10, 90], axis=0), color=CYCLE[i],
                         alpha=0.15)
    ax1.axhline(1, ls="--", color=PALETTE["theory"], label="prediction 1")
    ax1.set(xlabel=r"layer $\ell$", ylabel=r"$\rho_\ell = \|h_\ell\|/\|x\|$", ylim=(0, 2),
            title="(a) He-ReLU: median and 10–90 % band")
    W = np.array(widths)
    slope, _ = fit_power_law(W, sd_measured)
    ax2.loglog(W, sd_measured, "o", color=PALETTE["gradient"],
               label=f"measured (fit slope {slope:.2f})")
    ax2.loglog(W, sd_predicted, "--", color=PALETTE["theory"],
               label=r"$\sqrt{\prod_\ell(1 + 5/n) - 1}$")
    ax2.set(xlabel=r"width $n$", ylabel=r"sd of $\rho_L^2$", title=f"(b) fluctuations, L = {L}")
    _log_ticks(ax2, W)
    for i, ((act, scale, name), q) in enumerate(zip(variants, variant_rho)):
        ax3.semilogy(layers, np.asarray(q).mean(0), "o", ms=4, color=CYCLE[i], label=name)
        ax3.semilogy(layers, length_map(act, scale, L), "--", color=CYCLE[i])
    ax3.plot([], [], "--", color=PALETTE["theory"], label="length map")
    ax3.set(xlabel=r"layer $\ell$", ylabel=r"mean $\rho_\ell$",
            title=f"(c) other choices, width {variant_width}")
    for ax in (ax1, ax2, ax3):
        ax.legend(loc="best", fontsize=9)
    return ax1, ax2, ax3


def plot_cosine_scaling(fig: Figure, out: Mapping[str, Any], st: GradientStats | None = None
                        ) -> tuple[Axes, Axes, Axes]:
    """Draw the three-panel figure of the gradient of random networks against d.

    (a) top, full width: mean |cos∠(x, ∇f)| = E|f|/(‖∇f‖‖x‖) against d (log–log, ±2 s.e.
    over networks), its power-law fit and the prediction √(2/π) d^(−1/2) (dashed);
    (b) bottom left: histogram of √d cos∠(x, ∇f) at one d against N(0, 1) (dashed);
    (c) bottom right: the coefficient of variation of ‖∇f‖ against d, its fit and a
    slope −1/2 reference (dashed).

    Args:
        fig: an empty figure (the book uses ``figsize=(10, 8)``).
        out: the dict returned by :func:`cosine_scaling` (at least two dimensions).
        st: the sample for panel (b); default ``out["raw"][-1]`` (the largest d).

    Returns:
        The axes of panels (a), (b), (c).
    """
    st = out["raw"][-1] if st is None else st
    d_arr = np.asarray(out["d"])
    dd = np.geomspace(d_arr.min(), d_arr.max(), 100)
    grid = fig.add_gridspec(2, 2)
    ax1 = fig.add_subplot(grid[0, :])
    ax2, ax3 = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    # (a) the scaling law, with the fit and the prediction
    ax1.errorbar(d_arr, out["mean_abs_cos"], yerr=2 * out["se"] / np.sqrt(d_arr), fmt="o",
                 color=PALETTE["gradient"], capsize=3, label="measured (±2 s.e. over networks)")
    fit = f"fit: ${out['constant']:.2f}\\,d^{{{out['slope']:.3f}}}$"
    ax1.plot(dd, out["constant"] * dd ** out["slope"], "-", alpha=0.6,
             color=PALETTE["gradient"], label=fit)
    ax1.plot(dd, math.sqrt(2 / math.pi) / np.sqrt(dd), "--", color=PALETTE["theory"],
             label=r"prediction $\sqrt{2/\pi}\,d^{-1/2}$")
    ax1.set(xscale="log", yscale="log", xlabel="input dimension $d$ (= width)",
            ylabel=r"$E\,|f|\,/\,(\|\nabla f\|\,\|x\|)$",
            title="(a) relative linearised distance = |cos|")
    _log_ticks(ax1, d_arr.astype(int))
    # (b) the cosine at one d against N(0, 1)
    z = np.asarray(math.sqrt(st.d) * st.cos).ravel()
    ax2.hist(z, bins=50, density=True, alpha=0.6, color=PALETTE["gradient"],
             label=rf"$\sqrt{{d}}\cos\angle(x, \nabla f)$, d = {st.d}")
    t = np.linspace(-4, 4, 200)
    ax2.plot(t, np.exp(-t**2 / 2) / math.sqrt(2 * math.pi), "--", color=PALETTE["theory"],
             label=r"$\mathcal{N}(0, 1)$")
    ax2.set(xlabel=r"$\sqrt{d}\,\cos\angle(x, \nabla f(x))$", ylabel="density",
            title="(b) the gradient looks random")
    # (c) the coefficient of variation of the gradient norm
    cv = np.asarray(out["grad_norm_cv"])
    cv_slope, cv_const = fit_power_law(d_arr, cv)
    ax3.loglog(d_arr, cv, "o", color=PALETTE["random"], label="measured")
    ax3.loglog(dd, cv_const * dd ** cv_slope, "-", alpha=0.6, color=PALETTE["random"],
               label=f"fit: slope {cv_slope:.2f}")
    ax3.loglog(dd, cv[0] * np.sqrt(d_arr[0] / dd), "--", color=PALETTE["theory"],
               label=r"slope $-1/2$")
    ax3.set(xlabel="input dimension $d$ (= width)", ylabel=r"CV of $\|\nabla f(x)\|$",
            title=r"(c) $\|\nabla f\|$ concentrates")
    _log_ticks(ax3, d_arr.astype(int))
    for ax in (ax1, ax2, ax3):
        ax.legend(loc="best", fontsize=9)
    return ax1, ax2, ax3


def plot_isometry_distortion(ax: Axes, ks: Sequence[int], n: int, worst: Sequence[float], *,
                             delta: float = 0.05) -> None:
    """Draw how far W^T (k × n, N(0, 1/n) entries) is from an isometry, against k/n.

    Three curves on log–log axes: the measured worst distortion ``worst`` (dots), the
    Marchenko–Pastur prediction 2√(k/n) + k/n (dashed), and the ε at which the union bound
    over 2^k patterns reaches failure probability δ (:func:`union_bound_epsilon`, squares;
    shown only where ε < 1), with a grey line at distortion 1.

    Args:
        ax: the axes to draw on.
        ks: the layer widths k (one per point of ``worst``). n: the previous layer's width.
        worst: measured max(s_max² − 1, 1 − s_min²) of W^T, one value per k.
        delta: the failure probability of the union bound.
    """
    q = np.array(ks) / n
    qq = np.geomspace(q.min(), 1, 100)
    eps_ub = np.array([union_bound_epsilon(k, n, delta) for k in ks])
    ok = eps_ub < 1  # the chi-square tail bound needs eps < 1
    ax.loglog(q, worst, "o", color=PALETTE["gradient"], label="measured worst distortion")
    ax.loglog(qq, 2 * np.sqrt(qq) + qq, "--", color=PALETTE["theory"],
              label=r"Marchenko–Pastur: $2\sqrt{k/n} + k/n$")
    ax.loglog(q[ok], eps_ub[ok], "s:", lw=2.2, color=PALETTE["random"],
              label=rf"union bound, $2^k$ patterns ($\delta = {100 * delta:g}\%$)")
    ax.axhline(1, color=PALETTE["muted"], lw=1)
    ax.set(xlabel=r"width ratio $k/n$ (layer / previous layer)",
           ylabel=r"distortion $\varepsilon$",
           title=f"How far $W^\\top$ is from an isometry, n = {n}")
    ax.legend(loc="lower right")

"""Chapter 4: one gradient step, through Gaussian conditioning (Bubeck et al.; Montanari & Wu).

The two-layer model of Bubeck et al. (2021) and Montanari & Wu (2022):

    f(x) = Σ_{i≤m} a_i σ(⟨w_i, x⟩),   w_i ~ N(0, I_d/d),   a_i mean-zero with variance 1/m,
    ‖x‖ = √d,

i.e. ``nets.init_params(key, [d, m], weight_scale="lecun")`` (untruncated N(0, 1/d) entries,
Gaussian readout N(0, 1/m)) with inputs from :func:`mini_adv.data.sphere`. For such f,
g = Wx is exactly N(0, I_m), f(x) ≈ N(0, E σ(Z)²) and ‖∇f(x)‖² ≈ E σ'(Z)², and one fixed
step x' = x − s·sign(f(x))·∇f(x) gives f(x') ≈ f(x) − s·sign(f(x))·‖∇f(x)‖², so the sign
flips with probability

    p(s) ≈ 2Φ(s · E σ'(Z)² / √(E σ(Z)²)) − 1.

This module provides:

* :func:`gaussian_moments` — (E σ(Z)², E σ'(Z)²) by Gauss–Hermite quadrature, σ' by
  ``jax.grad``; :func:`predicted_output_variance`, :func:`predicted_grad_norm_sq`,
  :func:`flip_law`, :func:`predicted_flip_probability` and its inverse in s,
  :func:`step_for_flip_probability`; :func:`positive_readout_offset` (a readout that is not
  mean-zero) and :func:`band_fractions` (how well the band |f| < s·E‖∇f‖² predicts flips);
  :func:`mean_field_moments`
  extends the moments to deeper networks (the book's heuristic, not a theorem of the papers);
* :func:`conditioning_decomposition` — W = g x̂ᵀ/‖x‖ + W P⊥ for a given x, and
  :func:`independence_samples`, which measures that W P⊥ is independent of g;
* :func:`draw_networks`, :func:`one_step_samples` and :func:`sample_one_step` — the fixed
  step (the kernel of :func:`mini_adv.attacks.gradient_step`, flips verified) on many
  independent networks: one jitted call draws them (``nets.init_params(..., n=N)``), one
  jitted call vmapped over the networks and the step sizes (:func:`one_step_kernel`) returns
  the samples (f(x), f(x'), ‖∇f(x)‖) as :class:`OneStepSamples`.

The chapter's figures are in :mod:`mini_adv.figures.ch4`. Drawing the networks in a separate
jitted call from the step lets every activation reuse the compiled draw (the weights do not
depend on σ), instead of recompiling the random-number generation for every activation.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mini_adv import quadrature
from mini_adv.activations import Activation, get_activation
from mini_adv.attacks import Status, gradient_step_kernel
from mini_adv.data import sphere_batches
from mini_adv.gradients import value_and_input_grad_kernel
from mini_adv.nets import READOUTS, WEIGHT_SCALES, MLPParams, init_params
from mini_adv.runtime import float64
from mini_adv.validation import (check_float_array, check_key, check_number, check_params,
                                 check_size, check_stacked_batch, check_widths)

QUADRATURE_NODES = quadrature.NUM_NODES
"""Gauss–Hermite nodes used by :func:`gaussian_moments` (:data:`mini_adv.quadrature.NUM_NODES`).
The number is even, so no node sits at 0, where ReLU and |x| have their kink; the nodes are
symmetric, so for those two the rule is exact (E σ'(Z)² = Σ w_i 1{z_i > 0} = 1/2 for ReLU)."""


def _scale(weight_scale: Any) -> float:
    """The weight scale c (entries N(0, c²/fan_in)) of ``"lecun"``, ``"he"`` or a number c > 0."""
    if isinstance(weight_scale, str):
        if weight_scale not in WEIGHT_SCALES:
            raise ValueError(f"unknown weight_scale {weight_scale!r}; use one of "
                             f"{sorted(WEIGHT_SCALES)} or a positive number")
        return WEIGHT_SCALES[weight_scale]
    return float(check_number("weight_scale", weight_scale, low=0.0))


def _mean_field(activation: str | Activation, depth: int, c: float) -> tuple[float, float]:
    try:
        return _mean_field_cached(activation, depth, c)
    except TypeError:  # an unhashable callable: compute without the cache
        return _mean_field_quadrature(activation, depth, c)


@functools.lru_cache(maxsize=256)
def _mean_field_cached(activation: str | Activation, depth: int, c: float) -> tuple[float, float]:
    return _mean_field_quadrature(activation, depth, c)


def _mean_field_quadrature(activation: str | Activation, depth: int, c: float
                           ) -> tuple[float, float]:
    """(E σ(√p_L Z)², Π_ℓ c² E σ'(√p_ℓ Z)²) with p_ℓ = c² q_{ℓ−1} from the length map."""
    sigma = get_activation(activation)
    slope = jnp.vectorize(jax.grad(sigma))
    with float64():
        q = quadrature.length_map(sigma, jnp.asarray(c, jnp.float64), depth, 1.0)
        p = c * c * q[:-1]                                        # p_1, …, p_L
        m1 = quadrature.expectation(lambda z: slope(z) ** 2, jnp.sqrt(p))
        var_f, chi = float(q[-1]), float(jnp.prod(c * c * m1))
    if not (math.isfinite(var_f) and math.isfinite(chi)):
        raise ValueError(f"E σ(Z)² or E σ'(Z)² is not finite for activation {activation!r}; "
                         "use an activation of at most polynomial growth")
    return var_f, chi


def gaussian_moments(activation: str | Activation, *, std: float = 1.0) -> tuple[float, float]:
    """(E σ(Z)², E σ'(Z)²) for Z ~ N(0, std²), by Gauss–Hermite quadrature.

        E φ(Z) ≈ Σ_i w_i φ(std · z_i),   (z_i, w_i) = probabilists' Hermite nodes and weights,

    with :data:`QUADRATURE_NODES` nodes (:func:`mini_adv.quadrature.expectation`), computed in
    float64; σ' is ``jax.grad(σ)`` at every node. The derivative of ReLU and |x| at the kink 0
    is never used (no node is 0, a measure-zero set for Z). The values are the limits of
    Var f(x) and ‖∇f(x)‖² for the two-layer model (Bubeck et al. 2021; Montanari & Wu 2022).
    ReLU gives (1/2, 1/2), x² gives (3, 4); GELU is ``jax.nn.gelu`` (its default tanh
    approximation), as in the networks.

    Args:
        activation: a name in :data:`mini_adv.activations.ACTIVATIONS` or a callable
            (scalar in, scalar out, differentiable by ``jax.grad`` away from a null set).
        std: the standard deviation of Z (1 for the two-layer model on the sphere); Python,
            NumPy or 0-d JAX number.

    Returns:
        Two Python floats ``(E σ(Z)², E σ'(Z)²)``.

    Raises:
        ValueError: for an unknown activation, a non-positive ``std``, or moments that are
            not finite.
    """
    get_activation(activation)  # raises ValueError for an unknown name
    std = float(check_number("std", std, low=0.0))
    # depth 1 with weight scale c = std: p_1 = std², Var f = E σ(std Z)², χ = std² E σ'(std Z)²
    var_f, chi = _mean_field(activation, 1, std)
    return var_f, chi / (std * std)


def mean_field_moments(activation: str | Activation, depth: int = 1,
                       weight_scale: str | float = "lecun") -> tuple[float, float]:
    """Infinite-width (Var f(x), E‖∇f(x)‖²) of a random MLP with ``depth`` hidden layers.

    For ``init_params(key, [d, h_1, …, h_L], weight_scale=c)`` (entries N(0, c²/fan_in),
    readout variance 1/h_L) and ‖x‖ = √d, with pre-activation variances p_ℓ:

        p_1 = c²,   p_{ℓ+1} = c² E σ(√p_ℓ Z)²,
        Var f → E σ(√p_L Z)²,   E‖∇f‖² → Π_{ℓ=1}^{L} c² E σ'(√p_ℓ Z)².

    The recursion is the length map q_ℓ = p_{ℓ+1}/c² of :func:`mini_adv.quadrature.length_map`
    (chapter 2's norm propagation), with the same quadrature rule. Depth 1 with c = 1 is
    :func:`gaussian_moments`. For L ≥ 2 this is the mean-field ("gradient independence")
    heuristic used by the book for deep networks, not a theorem of the papers.

    Args:
        activation: name or callable. depth: L ≥ 1.
        weight_scale: ``"lecun"`` (c = 1), ``"he"`` (c = √2) or a number c > 0.

    Returns:
        Two Python floats ``(Var f, E‖∇f‖²)``.

    Raises:
        ValueError: for an unknown activation or weight scale, a non-positive depth, or
            moments that are not finite.
    """
    get_activation(activation)  # raises ValueError for an unknown name
    depth = check_size("depth", depth)
    return _mean_field(activation, depth, _scale(weight_scale))


def predicted_output_variance(activation: str | Activation, depth: int = 1,
                              weight_scale: str | float = "lecun") -> float:
    """The limit of Var f(x) over random networks: E σ(Z)² for the two-layer model.

    (Deeper networks: :func:`mean_field_moments`.)
    """
    return mean_field_moments(activation, depth, weight_scale)[0]


def predicted_grad_norm_sq(activation: str | Activation, depth: int = 1,
                           weight_scale: str | float = "lecun") -> float:
    """The limit of ‖∇f(x)‖²: E σ'(Z)² for the two-layer model.

    At finite d the exact mean over networks is ((d−1)/d)·E σ'(Z)² + E[Z² σ'(Z)²]/d (the
    part of ∇f along x̂ is ⟨g, a ⊙ σ'(g)⟩/√d); the limit is what the flip law uses.
    (Deeper networks: :func:`mean_field_moments`.)
    """
    return mean_field_moments(activation, depth, weight_scale)[1]


def _steps(s: Any) -> np.ndarray:
    """The step size(s) s as a float64 array: a number (Python, NumPy, 0-d JAX) or a sequence."""
    try:
        arr = np.asarray(s, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"the step s must be a positive number or a sequence of them; "
                         f"got {s!r}") from None
    if arr.size == 0 or not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        raise ValueError(f"the step s must be positive and finite (x' = x − s·sign(f)∇f with "
                         f"s > 0); got {s!r}")
    return arr


def flip_law(var_f: float, grad_sq: float, s: Any) -> float | np.ndarray:
    """p(s) = 2Φ(s · grad_sq / √var_f) − 1 = erf(s · grad_sq / √(2 var_f)).

    The probability that |F| < s·grad_sq for F ~ N(0, var_f): the flip condition
    |f(x)| < s‖∇f(x)‖² with ‖∇f‖² replaced by its limit.

    Args:
        var_f: Var f > 0. grad_sq: E‖∇f‖² ≥ 0. s: step(s) > 0, a number or a sequence.

    Returns:
        A float for scalar ``s``, else an array of the shape of ``s``.

    Raises:
        ValueError: if s ≤ 0, var_f ≤ 0 or grad_sq < 0, or any is not finite.
    """
    s_arr = _steps(s)
    try:
        var_f = check_number("Var f", var_f, low=0.0)
    except ValueError as e:
        raise ValueError(f"{e} (the flip law needs Var f > 0: f ≡ 0 has no sign)") from None
    grad_sq = check_number("E‖∇f‖²", grad_sq, low=0.0, strict_low=False)
    erf = np.vectorize(math.erf)
    p = erf(s_arr * grad_sq / math.sqrt(2.0 * var_f))
    return float(p) if p.ndim == 0 else p


def predicted_flip_probability(activation: str | Activation, s: Any, depth: int = 1,
                               weight_scale: str | float = "lecun") -> float | np.ndarray:
    """The predicted flip probability of one fixed step x' = x − s·sign(f(x))·∇f(x).

        p(s) = 2Φ(s · E σ'(Z)² / √(E σ(Z)²)) − 1

    (Montanari & Wu 2022, in the book's heuristic form: f(x') ≈ f(x) − s·sign(f)‖∇f‖²,
    f(x) ≈ N(0, E σ(Z)²), ‖∇f‖² ≈ E σ'(Z)²). ReLU: 2Φ(s/√2) − 1. With ``depth`` > 1 the
    moments are :func:`mean_field_moments` (a heuristic).

    Args:
        activation: name or callable. s: step(s) > 0, a scalar or an array.
        depth, weight_scale: the network (default: the two-layer model, w_i ~ N(0, I/d)).

    Returns:
        A float for scalar ``s``, else an array of the shape of ``s``.

    Raises:
        ValueError: for an unknown activation, s ≤ 0, or E σ(Z)² = 0.
    """
    var_f, grad_sq = mean_field_moments(activation, depth, weight_scale)
    return flip_law(var_f, grad_sq, s)


def step_for_flip_probability(activation: str | Activation, p: float, depth: int = 1,
                              weight_scale: str | float = "lecun") -> float:
    """The fixed step s whose predicted flip probability is ``p``: the inverse of
    :func:`predicted_flip_probability` in s,

        s(p) = Φ⁻¹((1 + p)/2) · √(E σ(Z)²) / E σ'(Z)²

    (the book's heuristic flip law, chapter 4). Every activation's step s(p) gives the same
    predicted picture once f is divided by √(E σ(Z)²): the band |f(x)| < s·E σ'(Z)² becomes
    |f(x)|/√(E σ(Z)²) < Φ⁻¹((1 + p)/2). ReLU: s(1/2) = √2 · Φ⁻¹(3/4) ≈ 0.954.

    Args:
        activation: name or callable. p: the flip probability, 0 < p < 1.
        depth, weight_scale: the network, as for :func:`predicted_flip_probability`.

    Returns:
        A Python float s > 0.

    Raises:
        ValueError: if p is not a number in (0, 1), for an unknown activation, or if
            E σ'(Z)² = 0 (no step moves f).
    """
    p = check_number("p", p, low=0.0, high=1.0, strict_high=True)
    var_f, grad_sq = mean_field_moments(activation, depth, weight_scale)
    if not grad_sq > 0:
        raise ValueError(f"E σ'(Z)² = 0 for activation {activation!r}: no fixed step flips f")
    return float(statistics.NormalDist().inv_cdf((1.0 + p) / 2.0) * math.sqrt(var_f) / grad_sq)


def positive_readout_offset(activation: str | Activation, m: int) -> float:
    """The mean of f(x) over networks when the readout is made non-negative, a_i → |a_i|:

        E f(x) = Σ_i E|a_i| · E σ(Z) = m · √(2/(π m)) · E σ(Z) = √(2m/π) · E σ(Z)

    for a Gaussian readout a_i ~ N(0, 1/m) (E|a_i| = √(2/(π m))) and Z ~ N(0, 1). ReLU:
    √m/π (the quadrature is within 0.3 % of it: the kink); x²: √(2m/π). Zero for an odd σ such as tanh (chapter 4, "A readout that is not
    mean-zero").

    Args:
        activation: name or callable. m: the width, a positive integer.

    Returns:
        A Python float.

    Raises:
        ValueError: for an unknown activation or a width that is not a positive integer.
    """
    m = check_number("m", m, integer=True, low=0)
    sigma = get_activation(activation)
    with float64():
        mean = float(quadrature.expectation(lambda z: sigma(z)))
    return math.sqrt(2.0 * m / math.pi) * mean


def band_fractions(samples: "OneStepSamples", s: float) -> tuple[float, float]:
    """How well the predicted band |f(x)| < s·E‖∇f‖² separates flips from non-flips, at the
    measured step closest to ``s``: (fraction of the samples inside the band that flipped,
    fraction of the samples outside it that did not). Both are 1 if every input had
    ‖∇f(x)‖² equal to its mean and R = 0 (chapter 4, the first figure).

    Raises:
        ValueError: if the band or its complement holds no sample.
    """
    i = samples.index(s)
    band = np.abs(samples.f) < float(samples.s[i]) * samples.moments()[1]
    if band.all() or not band.any():
        raise ValueError(f"at s = {float(samples.s[i]):g} the band |f| < s·E‖∇f‖² holds "
                         f"{int(band.sum())} of {band.size} samples; need some on both sides")
    flipped = samples.flipped[i]
    return float(flipped[band].mean()), float(1.0 - flipped[~band].mean())


# --------------------------------------------------------------------------------------
# The conditioning step
# --------------------------------------------------------------------------------------

def _decompose(W: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    xhat = x / jnp.linalg.norm(x)
    return W @ x, W - (W @ xhat)[..., None] * xhat


def conditioning_decomposition(W: Any, x: Any) -> tuple[jax.Array, jax.Array]:
    """Split W along a given x:  W = g x̂ᵀ/‖x‖ + W P⊥,  g = W x,  P⊥ = I − x̂x̂ᵀ.

    On the sphere ‖x‖ = √d this is W = g x̂ᵀ/√d + W P⊥. If the rows of W are i.i.d.
    N(0, I/d) and x is fixed, g ~ N(0, (‖x‖²/d) I) and W P⊥ are jointly Gaussian and
    uncorrelated, hence **independent** (Bolthausen's conditioning trick, as used by
    Montanari & Wu 2022): conditioning on f(x), which depends on W only through g, leaves
    the law of W P⊥ unchanged.

    Args:
        W: ``(..., m, d)`` weight matrices in the theory's convention (row i is w_i; a
            network's first kernel ``params.kernels[0]`` is Wᵀ, shape ``(d, m)``).
        x: ``(d,)`` a non-zero input.

    Returns:
        ``(g, W_perp)`` with shapes ``(..., m)`` and ``(..., m, d)``; ``W_perp @ x = 0``.

    Raises:
        ValueError: for mismatched shapes, a zero x, non-floating or non-finite values.
    """
    W = check_float_array("W", W)
    x = check_float_array("x", x, W.dtype)
    if W.ndim < 2 or x.ndim != 1 or W.shape[-1] != x.shape[0]:
        raise ValueError(f"W must have shape (..., m, d) and x shape (d,); got W {tuple(W.shape)}, "
                         f"x {tuple(x.shape)}")
    if float(jnp.linalg.norm(x)) == 0.0:
        raise ValueError("x is the zero vector; the decomposition needs a direction x̂ = x/‖x‖")
    return _decompose(W, x)


@dataclasses.dataclass(frozen=True)
class IndependenceSamples:
    """Rows w_i of random first-layer weights, seen through the decomposition at one fixed x.

    Every array has shape ``(n_rows,)``, one entry per row w_i (all rows of all networks;
    rows are i.i.d. N(0, I/d)).

    Attributes:
        g: g_i = ⟨w_i, x⟩ (exactly N(0, ‖x‖²/d), i.e. N(0, 1) on the sphere).
        w_u: ⟨w_i, u⟩ for a fixed unit u at angle θ to x: correlated with g (corr cos θ).
        perp_u: ⟨P⊥w_i, u⟩, the same projection of the row of W P⊥: independent of g.
        perp_norm_sq: ‖P⊥w_i‖² (≈ χ²_{d−1}/d), whose law must not depend on g either.
        d: the input dimension.
        cos_angle: cos θ = ⟨x̂, u⟩.
        reconstruction_error: max over entries of |W − (g x̂ᵀ/‖x‖ + W P⊥)|.
        orthogonality_error: max over rows of |⟨P⊥w_i, x⟩|.
    """

    g: np.ndarray
    w_u: np.ndarray
    perp_u: np.ndarray
    perp_norm_sq: np.ndarray
    d: int
    cos_angle: float
    reconstruction_error: float
    orthogonality_error: float

    def split(self, threshold: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
        """Boolean masks of the rows with |g| > threshold ("g large") and |g| < 1/threshold."""
        return np.abs(self.g) > threshold, np.abs(self.g) < 1.0 / threshold

    def summary(self, threshold: float = 1.5) -> dict[str, float]:
        """Correlations with g, and the law of the rows of W P⊥ for |g| large vs small.

        Independence predicts corr(g, ⟨P⊥w, u⟩) = 0, corr(|g|, |⟨P⊥w, u⟩|) = 0,
        corr(|g|, ‖P⊥w‖²) = 0 and equal standard deviations of ⟨P⊥w, u⟩ in both groups;
        the rows of W itself fail the last test (s.d. of ⟨w, u⟩ grows with |g|), which shows
        the test can see dependence. Each correlation from n rows has s.e. about 1/√n.

        Raises:
            ValueError: if fewer than 2 rows fall in either group (the s.d. would be NaN).
        """
        big, small = self.split(threshold)
        if big.sum() < 2 or small.sum() < 2:
            raise ValueError(f"only {int(big.sum())} rows have |g| > {threshold:g} and "
                             f"{int(small.sum())} have |g| < {1 / threshold:.3g}; the comparison "
                             f"needs at least 2 in each: use more networks or rows")
        ag = np.abs(self.g)

        def corr(a: np.ndarray, b: np.ndarray) -> float:
            return float(np.corrcoef(a, b)[0, 1])

        return {
            "n_rows": float(self.g.size), "cos_angle": self.cos_angle,
            "corr_g_wu": corr(self.g, self.w_u), "corr_g_perp_u": corr(self.g, self.perp_u),
            "corr_absg_abs_perp_u": corr(ag, np.abs(self.perp_u)),
            "corr_absg_perp_norm_sq": corr(ag, self.perp_norm_sq),
            "sd_wu_big_g": float(np.std(self.w_u[big])),
            "sd_wu_small_g": float(np.std(self.w_u[small])),
            "sd_perp_u_big_g": float(np.std(self.perp_u[big])),
            "sd_perp_u_small_g": float(np.std(self.perp_u[small])),
            "n_big": float(big.sum()), "n_small": float(small.sum()),
            "reconstruction_error": self.reconstruction_error,
            "orthogonality_error": self.orthogonality_error,
        }


@jax.jit
def _independence_kernel(W: jax.Array, x: jax.Array, u: jax.Array):
    g, W_perp = _decompose(W, x)
    xhat = x / jnp.linalg.norm(x)
    recon = jnp.max(jnp.abs(W - (g[..., None] * xhat / jnp.linalg.norm(x) + W_perp)))
    ortho = jnp.max(jnp.abs(W_perp @ x))
    return g, W @ u, W_perp @ u, jnp.sum(W_perp**2, axis=-1), recon, ortho


def independence_samples(key: jax.Array, params: MLPParams | Any, x: Any, *,
                         cos_angle: float = math.sqrt(0.5)) -> IndependenceSamples:
    """Decompose random first-layer weights at one fixed x and record what independence predicts.

    For every row w_i of W: g_i = ⟨w_i, x⟩, ⟨w_i, u⟩ and, for the row of W P⊥
    (:func:`conditioning_decomposition`), ⟨P⊥w_i, u⟩ and ‖P⊥w_i‖², where u is a random unit
    vector with ⟨x̂, u⟩ = cos θ. Independence of g and W P⊥ predicts that the last two do not
    depend on g (:meth:`IndependenceSamples.summary`).

    Args:
        key: PRNG key for the test direction u.
        params: a stack of networks (``init_params(..., n=N)``; its first kernels, of shape
            ``(N, d, m)``, are the transposes Wᵀ), one network, or an array W of shape
            ``(..., m, d)``.
        x: ``(d,)`` the input, drawn independently of the weights.
        cos_angle: cos θ ∈ [0, 1).

    Returns:
        :class:`IndependenceSamples` with one entry per row of every W.

    Raises:
        ValueError: for a key that is not a PRNG key, shapes that do not match, a zero or
            non-finite x, d < 2, or cos_angle outside [0, 1).
    """
    key = check_key(key)
    if isinstance(params, (np.ndarray, jax.Array)):
        W = check_float_array("W", params)
    else:
        W = jnp.swapaxes(check_params(params, stacked=None, name="params").kernels[0], -1, -2)
    conditioning_decomposition(W[..., :1, :], x)  # validates shapes, finiteness and x ≠ 0
    d = W.shape[-1]
    if d < 2:
        raise ValueError("d must be at least 2 (P⊥ projects onto the d − 1 directions orthogonal to x)")
    cos_angle = float(check_number("cos_angle", cos_angle, low=0.0, strict_low=False, high=1.0,
                                   strict_high=True))
    x = jnp.asarray(x, W.dtype)
    xhat = x / jnp.linalg.norm(x)
    e = jax.random.normal(key, (d,), W.dtype)
    e = e - jnp.dot(e, xhat) * xhat
    u = cos_angle * xhat + math.sqrt(1.0 - cos_angle**2) * e / jnp.linalg.norm(e)
    g, wu, pu, pn, recon, ortho = _independence_kernel(W.reshape(-1, d), x, u)
    return IndependenceSamples(g=np.asarray(g), w_u=np.asarray(wu), perp_u=np.asarray(pu),
                               perp_norm_sq=np.asarray(pn), d=int(d), cos_angle=cos_angle,
                               reconstruction_error=float(recon), orthogonality_error=float(ortho))


# --------------------------------------------------------------------------------------
# One fixed step on many independent networks
# --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class OneStepSamples:
    """One fixed gradient step from ``n`` inputs on each of ``N`` independent networks,
    for each step size in ``s``: the samples (f(x), f(x'), ‖∇f(x)‖).

    Attributes:
        widths: ``(d, h_1, …)`` of the networks.
        activation: the activation's name.
        weight_scale: the networks' weight scale (checked against the drawn weights by
            :func:`one_step_samples`), used by the prediction.
        s: ``(S,)`` step sizes.
        f: ``(N, n)`` f(x).
        grad_norm: ``(N, n)`` ‖∇f(x)‖.
        f_adv: ``(S, N, n)`` f(x') at x' = x − s·sign(f(x))·∇f(x).
        flipped: ``(S, N, n)`` f(x)·f(x') < 0, verified by re-evaluation (``gradient_step``).
        status: ``(S, N, n)`` :class:`~mini_adv.attacks.Status` codes.
    """

    widths: tuple[int, ...]
    activation: str
    weight_scale: Any
    s: np.ndarray
    f: np.ndarray
    grad_norm: np.ndarray
    f_adv: np.ndarray
    flipped: np.ndarray
    status: np.ndarray

    @property
    def d(self) -> int:
        """Input dimension."""
        return self.widths[0]

    @property
    def depth(self) -> int:
        """Number of hidden layers L (1 for the two-layer model)."""
        return len(self.widths) - 1

    @property
    def flip_rate(self) -> np.ndarray:
        """``(S,)`` fraction of (network, input) pairs flipped, per step size."""
        return self.flipped.mean(axis=(1, 2))

    @property
    def network_flip_rates(self) -> np.ndarray:
        """``(S, N)`` fraction of each network's inputs flipped."""
        return self.flipped.mean(axis=2)

    @property
    def n_networks(self) -> int:
        """N, the number of independent networks."""
        return int(self.f.shape[0])

    @property
    def flip_rate_se(self) -> np.ndarray:
        """``(S,)`` standard error of :attr:`flip_rate` from the spread between networks
        (inputs on one network share its randomness, e.g. the offset E σ(Z)·Σ a_i).

        Raises:
            ValueError: for a single network (the spread between networks is undefined).
        """
        if self.n_networks < 2:
            raise ValueError("the standard error over networks needs at least 2 networks; these "
                             "samples come from 1 (draw more with n_networks ≥ 2)")
        return self.network_flip_rates.std(axis=1, ddof=1) / math.sqrt(self.n_networks)

    @property
    def linear_prediction(self) -> np.ndarray:
        """``(S, N, n)`` f(x) − s·sign(f(x))·‖∇f(x)‖², the first-order value of f(x')."""
        return (self.f[None] - self.s[:, None, None] * np.sign(self.f)[None]
                * self.grad_norm[None] ** 2)

    @property
    def residual(self) -> np.ndarray:
        """``(S, N, n)`` f(x') − (f(x) − s·sign(f)‖∇f‖²): what the first-order picture misses."""
        return self.f_adv - self.linear_prediction

    def index(self, s: float) -> int:
        """Index of the measured step size closest to ``s``."""
        return int(np.argmin(np.abs(self.s - s)))

    def residual_sd(self, s: float) -> float:
        """Standard deviation of :attr:`residual` over all samples at the step closest to ``s``."""
        return float(self.residual[self.index(s)].std())

    def moments(self) -> tuple[float, float]:
        """The predicted (Var f, E‖∇f‖²) for these networks (:func:`mean_field_moments`)."""
        return mean_field_moments(self.activation, self.depth, self.weight_scale)

    def predicted_flip_rate(self, s: Any = None) -> np.ndarray:
        """:func:`flip_law` at ``s`` (default: the measured step sizes) for these networks:
        the two-layer law for depth 1, the mean-field heuristic for deeper ones."""
        return np.atleast_1d(flip_law(*self.moments(), self.s if s is None else s))

    def counts(self, i: int = 0) -> dict[str, int]:
        """How many samples ended in each :class:`~mini_adv.attacks.Status`, at step ``s[i]``."""
        return {st.name: int(np.sum(self.status[i] == st)) for st in Status}

    def summary(self) -> dict[str, Any]:
        """Measured vs predicted moments and flip rates (plain floats and lists).

        ``flip_rate_se`` is ``None`` for a single network (no spread between networks).
        """
        var_f, grad_sq = self.moments()
        return {
            "widths": list(self.widths), "activation": self.activation,
            "samples": int(self.f.size), "networks": self.n_networks,
            "var_f": float(np.var(self.f)), "var_f_predicted": var_f,
            "grad_sq": float(np.mean(self.grad_norm**2)), "grad_sq_predicted": grad_sq,
            "s": self.s.tolist(), "flip_rate": self.flip_rate.tolist(),
            "flip_rate_se": self.flip_rate_se.tolist() if self.n_networks > 1 else None,
            "flip_rate_predicted": self.predicted_flip_rate().tolist(),
            "residual_sd": self.residual.std(axis=(1, 2)).tolist(),
        }


@struct.dataclass
class OneStepOutput:
    """What :func:`one_step_kernel` returns (a pytree of JAX arrays, for use under jit).

    Attributes:
        f: ``(N, n)`` f(x).
        grad_norm: ``(N, n)`` ‖∇f(x)‖.
        f_adv: ``(S, N, n)`` f(x') at x' = x − s·sign(f(x))·∇f(x).
        flipped: ``(S, N, n)`` verified sign changes.
        status: ``(S, N, n)`` :class:`~mini_adv.attacks.Status` codes.
    """

    f: jax.Array
    grad_norm: jax.Array
    f_adv: jax.Array
    flipped: jax.Array
    status: jax.Array


def _one_network(params: MLPParams, X: jax.Array, s: jax.Array):
    """f, ‖∇f‖ at the rows of X and, for each step size in s, f(x') and the verified flip."""
    f, G = value_and_input_grad_kernel(params, X)
    step = jax.vmap(lambda size: gradient_step_kernel(params, X, size, adaptive=False,
                                                      f_clean=f, grad=G))(s)
    return f, jnp.linalg.norm(G, axis=-1), step.f_adv, step.flipped, step.status


@jax.jit
def one_step_kernel(params: MLPParams, X: jax.Array, s: jax.Array) -> OneStepOutput:
    """Pure kernel of :func:`one_step_samples`: vmapped over the N stacked networks.

    Args:
        params: a stack of N networks. X: ``(N, n, d)``. s: ``(S,)`` step sizes.

    Returns:
        :class:`OneStepOutput` (f and ‖∇f‖ of shape ``(N, n)``, the rest ``(S, N, n)``).
    """
    f, gn, f_adv, flipped, status = jax.vmap(_one_network, in_axes=(0, 0, None))(params, X, s)
    move = lambda a: jnp.moveaxis(a, 1, 0)  # noqa: E731  (N, S, n) -> (S, N, n)
    return OneStepOutput(f=f, grad_norm=gn, f_adv=move(f_adv), flipped=move(flipped),
                         status=move(status))


@functools.partial(jax.jit, static_argnames=("widths", "n_networks", "n_inputs", "weight_scale",
                                             "readout"))
def _draw_kernel(key: jax.Array, widths: tuple[int, ...], n_networks: int, n_inputs: int,
                 weight_scale: Any, readout: str) -> tuple[MLPParams, jax.Array]:
    k_net, k_x = jax.random.split(key)
    params = init_params(k_net, widths, weight_scale=weight_scale, readout=readout, n=n_networks)
    X = sphere_batches(k_x, n_networks, n_inputs, widths[0])
    return params, X


def draw_networks(key: jax.Array, widths: Sequence[int], *, n_networks: int, n_inputs: int = 1,
                  activation: str = "relu", weight_scale: str | float = "lecun",
                  readout: str = "gaussian") -> tuple[MLPParams, jax.Array]:
    """``n_networks`` independent networks and ``n_inputs`` inputs for each, in one jitted call.

    The networks are ``init_params(k_net, widths, weight_scale=…, readout=…, n=n_networks)``
    (default: the two-layer model w_i ~ N(0, I/d), a_i ~ N(0, 1/m)); the inputs are uniform
    on the sphere of radius √d, independent of the weights, shape ``(N, n, d)``. The weights
    depend on ``key`` but not on ``activation``, so the same key compares activations on the
    same weights.

    Args:
        key: PRNG key. widths: ``[d, m]`` or ``[d, h_1, …, h_L]``.
        n_networks, n_inputs: N networks, n inputs each.
        activation, weight_scale, readout: as in :func:`~mini_adv.nets.init_params`.

    Returns:
        ``(params, X)``: a stack of N networks and ``(N, n, d)`` inputs.

    Raises:
        ValueError: for a key that is not a PRNG key, widths or counts that are not positive
            integers, or an unknown activation, weight scale or readout.
    """
    key = check_key(key)
    widths = check_widths(widths)
    n_networks, n_inputs = check_size("n_networks", n_networks), check_size("n_inputs", n_inputs)
    if not isinstance(activation, str):
        raise ValueError(f"activation must be a name (it labels the samples); got {activation!r}")
    get_activation(activation)
    _scale(weight_scale)
    if readout not in READOUTS:
        raise ValueError(f"unknown readout {readout!r}; use one of {READOUTS}")
    params, X = _draw_kernel(key, widths, n_networks, n_inputs, weight_scale, readout)
    return params.replace(activation=activation), X


def _check_weight_scale(params: MLPParams, weight_scale: Any) -> None:
    """Raise if the drawn weights' variance contradicts the label ``weight_scale`` (CODE-33).

    Layer ℓ's entries are N(0, c²/fan_in): ĉ² = fan_in · mean(K_ℓ²) over all N networks has
    relative s.d. √(2/count). A label is refused when ĉ²/c² − 1 is more than 8 of those s.d.
    (plus 2 %) away from 0 in some layer; with few weights (e.g. N·d·m < 100) "he" and
    "lecun" cannot be told apart, and the check passes.
    """
    c2 = _scale(weight_scale) ** 2
    for layer, K in enumerate(params.kernels, start=1):
        fan_in, count = K.shape[-2], K.size
        measured = fan_in * float(jnp.mean(jnp.square(K.astype(jnp.float32))))
        if abs(measured / c2 - 1.0) > 8.0 * math.sqrt(2.0 / count) + 0.02:
            raise ValueError(
                f"weight_scale={weight_scale!r} (c² = {c2:.3g}) does not match the networks: their "
                f"layer-{layer} weights have fan_in·Var = {measured:.3g}; pass the weight_scale "
                f"the networks were drawn with (e.g. 'he' for c² = 2, 'lecun' for c² = 1)")


def _resolve_label(params: MLPParams, weight_scale: Any) -> str | float:
    """The weight scale that labels ``params``' samples: the given one, checked (CODE-33)."""
    recorded = params.weight_scale
    if weight_scale is None:
        if recorded is None:
            raise ValueError("these networks do not record the weight scale they were drawn with "
                             "(built by hand?): pass weight_scale='he', 'lecun' or a number c > 0")
        return float(recorded)
    c = _scale(weight_scale)
    if recorded is not None:
        if not math.isclose(c, float(recorded), rel_tol=1e-6):
            raise ValueError(f"weight_scale={weight_scale!r} (c = {c:.4g}) does not match the "
                             f"networks, which were drawn with c = {float(recorded):.4g}; leave "
                             f"weight_scale out to use the recorded scale")
    else:
        _check_weight_scale(params, weight_scale)
    return weight_scale


def one_step_samples(params: MLPParams, X: Any, s: Any, *,
                     weight_scale: str | float | None = None) -> OneStepSamples:
    """The fixed step x' = x − s·sign(f(x))·∇f(x) on given stacked networks.

    One jitted call (:func:`one_step_kernel`) vmapped over the N networks; for each network
    the kernel of :func:`mini_adv.attacks.gradient_step` runs for every s (vmapped over s,
    while f and ∇f are computed once per input), so every flip is verified by re-evaluating
    f at x', and inputs with f(x) = 0 or ∇f(x) = 0 are reported by status, never as flips.

    Args:
        params: a stack of N networks (``init_params(..., n=N)`` or :func:`draw_networks`);
            its activation must be a name.
        X: ``(N, n, d)`` inputs, ``X[k]`` for network k (cast to the weights' dtype).
        s: step size(s) > 0.
        weight_scale: the scale the networks were drawn with; it sets the predicted law.
            Default: the scale the parameters record (``params.weight_scale``, set by
            ``init_params``). A label given for networks that record their scale must agree
            with it; for networks that record none (built by hand) the label is required and
            is checked against the measured variance of the weights (entries N(0, c²/fan_in)).

    Returns:
        :class:`OneStepSamples`.

    Raises:
        ValueError: for an unstacked ``params``, a callable activation, a shape mismatch,
            non-floating or non-finite inputs, s ≤ 0, a ``weight_scale`` that the recorded
            scale or the weights' variance contradicts, or none for networks that record none.
    """
    s_arr = _steps(s).reshape(-1)
    params = check_params(params, stacked=True, name="params")
    if not isinstance(params.activation, str):
        raise ValueError("params.activation must be a name (it labels the samples and the prediction)")
    X = check_stacked_batch(params, X)
    weight_scale = _resolve_label(params, weight_scale)
    out = one_step_kernel(params, X, jnp.asarray(s_arr, X.dtype))
    return OneStepSamples(widths=tuple(int(w) for w in params.widths), activation=params.activation,
                          weight_scale=weight_scale, s=s_arr, f=np.asarray(out.f),
                          grad_norm=np.asarray(out.grad_norm), f_adv=np.asarray(out.f_adv),
                          flipped=np.asarray(out.flipped), status=np.asarray(out.status))


def sample_one_step(key: jax.Array, widths: Sequence[int], s: Any, *, n_networks: int,
                    n_inputs: int = 1, activation: str = "relu",
                    weight_scale: str | float = "lecun", readout: str = "gaussian"
                    ) -> OneStepSamples:
    """The joint samples (f(x), f(x'), ‖∇f(x)‖) of one fixed step on fresh random networks.

        x ~ Unif(√d·S^{d−1}) independent of the weights,   x' = x − s·sign(f(x))·∇f(x).

    :func:`draw_networks` (``widths = [d, m]`` with the defaults is the two-layer model of
    Bubeck et al. and Montanari & Wu) followed by :func:`one_step_samples`: two jitted calls,
    the second vmapped over the networks and over the step sizes.

    Args:
        key: PRNG key (the same key gives the same numbers, and the same weights for every
            activation).
        widths: ``[d, m]`` or ``[d, h_1, …, h_L]``.
        s: step size(s) > 0, scalar or sequence.
        n_networks, n_inputs: N independent networks, n inputs each.
        activation: a name in :data:`mini_adv.activations.ACTIVATIONS`.
        weight_scale, readout: as in :func:`~mini_adv.nets.init_params`.

    Returns:
        :class:`OneStepSamples`.

    Raises:
        ValueError: for a key that is not a PRNG key, non-positive widths or counts, an
            unknown activation, weight scale or readout, or s ≤ 0.
    """
    _steps(s)
    params, X = draw_networks(key, widths, n_networks=n_networks, n_inputs=n_inputs,
                              activation=activation, weight_scale=weight_scale, readout=readout)
    return one_step_samples(params, X, s, weight_scale=weight_scale)


# --------------------------------------------------------------------------------------
# The residual of the first-order formula against d
# --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ResidualScaling:
    """The s.d. of the residual f(x') − (f(x) − s·sign(f)‖∇f‖²) at one step s, against d.

    Attributes:
        s: the step size (the measured one closest to the requested).
        dims: ``(D,)`` input dimensions d of the runs. sd: ``(D,)`` residual s.d. per run.
        slope, C: the least-squares power law sd ≈ C·d^slope.
    """

    s: float
    dims: np.ndarray
    sd: np.ndarray
    slope: float
    C: float


def residual_scaling(runs: Sequence[OneStepSamples], s: float = 1.0) -> ResidualScaling:
    """Fit the residual's s.d. at step ``s`` against d over runs at different d (log-log).

    Args:
        runs: :class:`OneStepSamples` at two or more distinct input dimensions.
        s: the step size; each run uses its measured step closest to ``s``.

    Returns:
        :class:`ResidualScaling`.

    Raises:
        ValueError: for fewer than two runs or distinct d, or a zero residual s.d. (a
            power law needs positive values).
    """
    from mini_adv.stats import fit_power_law

    s = float(check_number("s", s, low=0.0))
    runs = list(runs)
    dims = np.array([r.d for r in runs], float)
    if len(set(dims.tolist())) < 2:
        raise ValueError(f"residual_scaling needs runs at two or more distinct d; got d = "
                         f"{sorted(set(int(d) for d in dims))}")
    i = [r.index(s) for r in runs]
    sd = np.array([float(r.residual[k].std()) for r, k in zip(runs, i)])
    slope, C = fit_power_law(dims, sd)
    return ResidualScaling(s=float(runs[0].s[i[0]]), dims=dims, sd=sd, slope=slope, C=C)

"""Chapter 4: one gradient step, through Gaussian conditioning (Bubeck et al.; Montanari & Wu).

The two-layer model of Bubeck et al. (2021) and Montanari & Wu (2022):

    f(x) = Σ_{i≤m} a_i σ(⟨w_i, x⟩),   w_i ~ N(0, I_d/d),   a_i mean-zero with variance 1/m,
    ‖x‖ = √d,

i.e. ``nets.init_params(key, [d, m], weight_scale="lecun")`` (untruncated N(0, 1/d) entries,
Gaussian readout N(0, 1/m)) with inputs from :func:`mini_adv.data.sphere`. For such f,
g = Wx is exactly N(0, I_m), f(x) ≈ N(0, E σ(G)²) and ‖∇f(x)‖² ≈ E σ'(G)², and one fixed
step x' = x − s·sign(f(x))·∇f(x) gives f(x') ≈ f(x) − s·sign(f(x))·‖∇f(x)‖², so the sign
flips with probability

    p(s) ≈ 2Φ(s · E σ'(G)² / √(E σ(G)²)) − 1.

This module provides:

* :func:`gaussian_moments` — (E σ(G)², E σ'(G)²) by Gauss–Hermite quadrature, σ' by
  ``jax.grad``; :func:`predicted_output_variance`, :func:`predicted_grad_norm_sq`,
  :func:`flip_law` and :func:`predicted_flip_probability`; :func:`mean_field_moments`
  extends the moments to deeper networks (the book's heuristic, not a theorem of the papers);
* :func:`conditioning_decomposition` — W = g x̂ᵀ/‖x‖ + W P⊥ for a given x, and
  :func:`independence_samples`, which measures that W P⊥ is independent of g;
* :func:`draw_networks`, :func:`one_step_samples` and :func:`sample_one_step` — the fixed
  step (the kernel of :func:`mini_adv.attacks.gradient_step`, flips verified) on many
  independent networks: one jitted call draws them (``nets.init_params(..., n=N)``), one
  jitted call vmapped over the networks and the step sizes (:func:`one_step_kernel`) returns
  the samples (f(x), f(x'), ‖∇f(x)‖) as :class:`OneStepSamples`;
* figure helpers for the chapter (:func:`plot_joint`, :func:`plot_flip_curves`,
  :func:`plot_residual_spread`, :func:`plot_independence`, :func:`draw_law_frame`).

Drawing the networks in a separate jitted call from the step lets every activation reuse
the compiled draw (the weights do not depend on σ). Measured on the 2-core CPU at
d = m = 256, 256 networks × 16 inputs: about 1 s per additional activation this way, against
about 2.6 s when the draw and the step were fused into one jitted function (``lax.map`` over
chunks of networks), which recompiles the random-number generation for every activation.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mini_adv.activations import Activation, get_activation
from mini_adv.attacks import Status, gradient_step_kernel
from mini_adv.data import _check_size, sphere
from mini_adv.gradients import value_and_input_grad_kernel
from mini_adv.nets import READOUTS, MLPParams, _resolve_scale, init_params
from mini_adv.runtime import float64

QUADRATURE_NODES = 200
"""Gauss–Hermite nodes used by :func:`gaussian_moments`. The number is even, so no node sits
at 0, where ReLU and |x| have their kink; the nodes are symmetric, so for those two the rule
is exact (E σ'(G)² = Σ w_i 1{z_i > 0} = 1/2 for ReLU)."""

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
_WEIGHTS = _WEIGHTS / math.sqrt(2.0 * math.pi)  # E φ(G) ≈ Σ w_i φ(z_i), G ~ N(0, 1)


def _check_std(std: Any) -> float:
    if not (isinstance(std, (int, float, np.floating)) and not isinstance(std, bool)
            and math.isfinite(std) and std > 0):
        raise ValueError(f"std must be a positive finite number, got {std!r}")
    return float(std)


def _moments(activation: str | Activation, std: float) -> tuple[float, float]:
    try:
        return _moments_cached(activation, std)
    except TypeError:  # an unhashable callable: compute without the cache
        return _quadrature(activation, std)


@functools.lru_cache(maxsize=256)
def _moments_cached(activation: str | Activation, std: float) -> tuple[float, float]:
    return _quadrature(activation, std)


def _quadrature(activation: str | Activation, std: float) -> tuple[float, float]:
    sigma = get_activation(activation)
    with float64():
        z = jnp.asarray(std * _NODES, dtype=jnp.float64)
        w = jnp.asarray(_WEIGHTS, dtype=jnp.float64)
        values = sigma(z)
        slopes = jax.vmap(jax.grad(sigma))(z)
        m0 = float(jnp.sum(w * values**2))
        m1 = float(jnp.sum(w * slopes**2))
    if not (math.isfinite(m0) and math.isfinite(m1)):
        raise ValueError(f"E σ(G)² or E σ'(G)² is not finite for activation {activation!r}; "
                         "use an activation of at most polynomial growth")
    return m0, m1


def gaussian_moments(activation: str | Activation, *, std: float = 1.0) -> tuple[float, float]:
    """(E σ(G)², E σ'(G)²) for G ~ N(0, std²), by Gauss–Hermite quadrature.

        E φ(G) ≈ Σ_i w_i φ(std · z_i),   (z_i, w_i) = probabilists' Hermite nodes and weights,

    with :data:`QUADRATURE_NODES` nodes, computed in float64; σ' is ``jax.grad(σ)`` vmapped
    over the nodes. The derivative of ReLU and |x| at the kink 0 is never used (no node is
    0, a measure-zero set for G). The values are the limits of Var f(x) and ‖∇f(x)‖² for the
    two-layer model (Bubeck et al. 2021; Montanari & Wu 2022). ReLU gives (1/2, 1/2),
    x² gives (3, 4); GELU is ``jax.nn.gelu`` (its default tanh approximation), as in the
    networks.

    Args:
        activation: a name in :data:`mini_adv.activations.ACTIVATIONS` or a callable
            (scalar in, scalar out, differentiable by ``jax.grad`` away from a null set).
        std: the standard deviation of G (1 for the two-layer model on the sphere).

    Returns:
        Two Python floats ``(E σ(G)², E σ'(G)²)``.

    Raises:
        ValueError: for an unknown activation, a non-positive ``std``, or moments that are
            not finite.
    """
    get_activation(activation)  # raises ValueError for an unknown name
    return _moments(activation, _check_std(std))


def mean_field_moments(activation: str | Activation, depth: int = 1,
                       weight_scale: str | float = "lecun") -> tuple[float, float]:
    """Infinite-width (Var f(x), E‖∇f(x)‖²) of a random MLP with ``depth`` hidden layers.

    For ``init_params(key, [d, h_1, …, h_L], weight_scale=c)`` (entries N(0, c²/fan_in),
    readout variance 1/h_L) and ‖x‖ = √d, with pre-activation variances p_ℓ:

        p_1 = c²,   p_{ℓ+1} = c² E σ(√p_ℓ G)²,
        Var f → E σ(√p_L G)²,   E‖∇f‖² → Π_{ℓ=1}^{L} c² E σ'(√p_ℓ G)².

    Depth 1 with c = 1 is :func:`gaussian_moments`. For L ≥ 2 this is the mean-field
    ("gradient independence") heuristic used by the book for deep networks, not a theorem
    of the papers.

    Raises:
        ValueError: for an unknown activation or weight scale, or a non-positive depth.
    """
    get_activation(activation)  # raises ValueError for an unknown name
    depth = _check_size("depth", depth)
    c2 = _resolve_scale(weight_scale) ** 2
    p, chi = c2, 1.0
    for _ in range(depth):
        m0, m1 = _moments(activation, math.sqrt(p))
        chi *= c2 * m1
        var_f, p = m0, c2 * m0
    return var_f, chi


def predicted_output_variance(activation: str | Activation, depth: int = 1,
                              weight_scale: str | float = "lecun") -> float:
    """The limit of Var f(x) over random networks: E σ(G)² for the two-layer model.

    (Deeper networks: :func:`mean_field_moments`.)
    """
    return mean_field_moments(activation, depth, weight_scale)[0]


def predicted_grad_norm_sq(activation: str | Activation, depth: int = 1,
                           weight_scale: str | float = "lecun") -> float:
    """The limit of ‖∇f(x)‖²: E σ'(G)² for the two-layer model.

    At finite d the exact mean over networks is ((d−1)/d)·E σ'(G)² + E[G² σ'(G)²]/d (the
    part of ∇f along x̂ is ⟨g, a ⊙ σ'(g)⟩/√d); the limit is what the flip law uses.
    (Deeper networks: :func:`mean_field_moments`.)
    """
    return mean_field_moments(activation, depth, weight_scale)[1]


def _check_steps(s: Any) -> np.ndarray:
    arr = np.asarray(s, dtype=float)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        raise ValueError(f"the step s must be positive and finite (x' = x − s·sign(f)∇f with "
                         f"s > 0); got {s!r}")
    return arr


def flip_law(var_f: float, grad_sq: float, s: Any) -> float | np.ndarray:
    """p(s) = 2Φ(s · grad_sq / √var_f) − 1 = erf(s · grad_sq / √(2 var_f)).

    The probability that |F| < s·grad_sq for F ~ N(0, var_f): the flip condition
    |f(x)| < s‖∇f(x)‖² with ‖∇f‖² replaced by its limit.

    Raises:
        ValueError: if s ≤ 0, var_f ≤ 0 or grad_sq < 0.
    """
    s_arr = _check_steps(s)
    if not (math.isfinite(var_f) and var_f > 0):
        raise ValueError(f"Var f must be positive for the flip law (f ≡ 0 has no sign); got {var_f!r}")
    if not (math.isfinite(grad_sq) and grad_sq >= 0):
        raise ValueError(f"E‖∇f‖² must be non-negative and finite; got {grad_sq!r}")
    erf = np.vectorize(math.erf)
    p = erf(s_arr * grad_sq / math.sqrt(2.0 * var_f))
    return float(p) if p.ndim == 0 else p


def predicted_flip_probability(activation: str | Activation, s: Any, depth: int = 1,
                               weight_scale: str | float = "lecun") -> float | np.ndarray:
    """The predicted flip probability of one fixed step x' = x − s·sign(f(x))·∇f(x).

        p(s) = 2Φ(s · E σ'(G)² / √(E σ(G)²)) − 1

    (Montanari & Wu 2022, in the book's heuristic form: f(x') ≈ f(x) − s·sign(f)‖∇f‖²,
    f(x) ≈ N(0, E σ(G)²), ‖∇f‖² ≈ E σ'(G)²). ReLU: 2Φ(s/√2) − 1. With ``depth`` > 1 the
    moments are :func:`mean_field_moments` (a heuristic).

    Args:
        activation: name or callable. s: step(s) > 0, a scalar or an array.
        depth, weight_scale: the network (default: the two-layer model, w_i ~ N(0, I/d)).

    Returns:
        A float for scalar ``s``, else an array of the shape of ``s``.

    Raises:
        ValueError: for an unknown activation, s ≤ 0, or E σ(G)² = 0.
    """
    var_f, grad_sq = mean_field_moments(activation, depth, weight_scale)
    return flip_law(var_f, grad_sq, s)


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
        ValueError: for mismatched shapes, a zero x, or non-finite values.
    """
    W, x = jnp.asarray(W), jnp.asarray(x)
    if W.ndim < 2 or x.ndim != 1 or W.shape[-1] != x.shape[0]:
        raise ValueError(f"W must have shape (..., m, d) and x shape (d,); got W {tuple(W.shape)}, "
                         f"x {tuple(x.shape)}")
    for name, a in (("W", W), ("x", x)):
        if not bool(jnp.all(jnp.isfinite(a))):
            raise ValueError(f"{name} contains NaN or inf; pass finite values")
    if float(jnp.linalg.norm(x)) == 0.0:
        raise ValueError("x is the zero vector; the decomposition needs a direction x̂ = x/‖x‖")
    return _decompose(W, x)


@struct.dataclass
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
    d: int = struct.field(pytree_node=False)
    cos_angle: float = struct.field(pytree_node=False)
    reconstruction_error: float = struct.field(pytree_node=False)
    orthogonality_error: float = struct.field(pytree_node=False)

    def split(self, threshold: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
        """Boolean masks of the rows with |g| > threshold ("g large") and |g| < 1/threshold."""
        return np.abs(self.g) > threshold, np.abs(self.g) < 1.0 / threshold

    def summary(self, threshold: float = 1.5) -> dict[str, float]:
        """Correlations with g, and the law of the rows of W P⊥ for |g| large vs small.

        Independence predicts corr(g, ⟨P⊥w, u⟩) = 0, corr(|g|, |⟨P⊥w, u⟩|) = 0,
        corr(|g|, ‖P⊥w‖²) = 0 and equal standard deviations of ⟨P⊥w, u⟩ in both groups;
        the rows of W itself fail the last test (s.d. of ⟨w, u⟩ grows with |g|), which shows
        the test can see dependence. Each correlation from n rows has s.e. about 1/√n.
        """
        big, small = self.split(threshold)
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


def independence_samples(weights: MLPParams | Any, x: Any, *, key: jax.Array,
                         cos_angle: float = math.sqrt(0.5)) -> IndependenceSamples:
    """Decompose random first-layer weights at one fixed x and record what independence predicts.

    Args:
        weights: a stack of networks (``init_params(..., n=N)``; its first kernels, of shape
            ``(N, d, m)``, are the transposes Wᵀ) or an array W of shape ``(..., m, d)``.
        x: ``(d,)`` the input, drawn independently of the weights.
        key: PRNG key for the test direction u (a unit vector with ⟨x̂, u⟩ = ``cos_angle``).
        cos_angle: cos θ ∈ [0, 1).

    Returns:
        :class:`IndependenceSamples` with one entry per row of every W.

    Raises:
        ValueError: for shapes that do not match, a zero or non-finite x, d < 2, or
            cos_angle outside [0, 1).
    """
    if isinstance(weights, MLPParams):
        W = jnp.swapaxes(weights.kernels[0], -1, -2)
    else:
        W = jnp.asarray(weights)
    conditioning_decomposition(W[..., :1, :], x)  # validates shapes, finiteness and x ≠ 0
    d = W.shape[-1]
    if d < 2:
        raise ValueError("d must be at least 2 (P⊥ projects onto the d − 1 directions orthogonal to x)")
    if not (isinstance(cos_angle, (int, float)) and 0.0 <= cos_angle < 1.0):
        raise ValueError(f"cos_angle must lie in [0, 1), got {cos_angle!r}")
    x = jnp.asarray(x, W.dtype)
    xhat = x / jnp.linalg.norm(x)
    e = jax.random.normal(key, (d,), W.dtype)
    e = e - jnp.dot(e, xhat) * xhat
    u = cos_angle * xhat + math.sqrt(1.0 - cos_angle**2) * e / jnp.linalg.norm(e)
    g, wu, pu, pn, recon, ortho = _independence_kernel(W.reshape(-1, d), x, u)
    return IndependenceSamples(g=np.asarray(g), w_u=np.asarray(wu), perp_u=np.asarray(pu),
                               perp_norm_sq=np.asarray(pn), d=int(d), cos_angle=float(cos_angle),
                               reconstruction_error=float(recon), orthogonality_error=float(ortho))


# --------------------------------------------------------------------------------------
# One fixed step on many independent networks
# --------------------------------------------------------------------------------------

@struct.dataclass
class OneStepSamples:
    """One fixed gradient step from ``n`` inputs on each of ``N`` independent networks,
    for each step size in ``s``: the samples (f(x), f(x'), ‖∇f(x)‖).

    Attributes:
        widths: ``(d, h_1, …)`` of the networks (static).
        activation: the activation's name (static).
        weight_scale: the networks' weight scale, used by the prediction (static).
        s: ``(S,)`` step sizes.
        f: ``(N, n)`` f(x).
        grad_norm: ``(N, n)`` ‖∇f(x)‖.
        f_adv: ``(S, N, n)`` f(x') at x' = x − s·sign(f(x))·∇f(x).
        flipped: ``(S, N, n)`` f(x)·f(x') < 0, verified by re-evaluation (``gradient_step``).
        status: ``(S, N, n)`` :class:`~mini_adv.attacks.Status` codes.
    """

    widths: tuple[int, ...] = struct.field(pytree_node=False)
    activation: str = struct.field(pytree_node=False)
    weight_scale: Any = struct.field(pytree_node=False)
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
    def flip_rate_se(self) -> np.ndarray:
        """``(S,)`` standard error of :attr:`flip_rate` from the spread between networks
        (inputs on one network share its randomness, e.g. the offset E σ(G)·Σ a_i)."""
        per_net = self.network_flip_rates
        n = per_net.shape[1]
        if n < 2:
            return np.full(len(self.s), np.nan)
        return per_net.std(axis=1, ddof=1) / math.sqrt(n)

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
        """Measured vs predicted moments and flip rates (plain floats and lists)."""
        var_f, grad_sq = self.moments()
        return {
            "widths": list(self.widths), "activation": self.activation,
            "samples": int(self.f.size), "networks": int(self.f.shape[0]),
            "var_f": float(np.var(self.f)), "var_f_predicted": var_f,
            "grad_sq": float(np.mean(self.grad_norm**2)), "grad_sq_predicted": grad_sq,
            "s": self.s.tolist(), "flip_rate": self.flip_rate.tolist(),
            "flip_rate_se": self.flip_rate_se.tolist(),
            "flip_rate_predicted": self.predicted_flip_rate().tolist(),
            "residual_sd": self.residual.std(axis=(1, 2)).tolist(),
        }


def _one_network(params: MLPParams, X: jax.Array, s: jax.Array):
    """f, ‖∇f‖ at the rows of X and, for each step size in s, f(x') and the verified flip."""
    f, G = value_and_input_grad_kernel(params, X)
    step = jax.vmap(lambda size: gradient_step_kernel(params, X, size, adaptive=False,
                                                      f_clean=f, grad=G))(s)
    return f, jnp.linalg.norm(G, axis=-1), step.f_adv, step.flipped, step.status


@jax.jit
def one_step_kernel(params: MLPParams, X: jax.Array, s: jax.Array):
    """Pure kernel of :func:`one_step_samples`: vmapped over the N stacked networks.

    Returns ``(f (N, n), ‖∇f‖ (N, n), f(x') (S, N, n), flipped (S, N, n), status (S, N, n))``.
    """
    out = jax.vmap(_one_network, in_axes=(0, 0, None))(params, X, s)
    f, gn, f_adv, flipped, status = out
    move = lambda a: jnp.moveaxis(a, 1, 0)  # noqa: E731  (N, S, n) -> (S, N, n)
    return f, gn, move(f_adv), move(flipped), move(status)


@functools.partial(jax.jit, static_argnames=("widths", "n_networks", "n_inputs", "weight_scale",
                                             "readout"))
def _draw_kernel(key: jax.Array, widths: tuple[int, ...], n_networks: int, n_inputs: int,
                 weight_scale: Any, readout: str) -> tuple[MLPParams, jax.Array]:
    k_net, k_x = jax.random.split(key)
    params = init_params(k_net, widths, weight_scale=weight_scale, readout=readout, n=n_networks)
    X = sphere(k_x, n_networks * n_inputs, widths[0]).reshape(n_networks, n_inputs, widths[0])
    return params, X


def _check_widths(widths: Any) -> tuple[int, ...]:
    try:
        widths = tuple(widths)
    except TypeError:
        raise ValueError(f"widths must be a sequence [d, m] or [d, h_1, ..., h_L], got {widths!r}") from None
    if len(widths) < 2:
        raise ValueError(f"widths must be [d, m] or longer (input dimension, then hidden widths); "
                         f"got {list(widths)}")
    _check_size("d", widths[0])
    for h in widths[1:]:
        _check_size("every hidden width (m)", h)
    return tuple(int(w) for w in widths)


def draw_networks(key: jax.Array, widths: Sequence[int], *, n_networks: int, n_inputs: int = 1,
                  activation: str = "relu", weight_scale: str | float = "lecun",
                  readout: str = "gaussian") -> tuple[MLPParams, jax.Array]:
    """``n_networks`` independent networks and ``n_inputs`` inputs for each, in one jitted call.

    The networks are ``init_params(k_net, widths, weight_scale=…, readout=…, n=n_networks)``
    (default: the two-layer model w_i ~ N(0, I/d), a_i ~ N(0, 1/m)); the inputs are uniform
    on the sphere of radius √d, independent of the weights, shape ``(N, n, d)``. The weights
    depend on ``key`` but not on ``activation``, so the same key compares activations on the
    same weights.

    Raises:
        ValueError: for widths or counts that are not positive integers (d, m < 1), or an
            unknown activation, weight scale or readout.
    """
    widths = _check_widths(widths)
    n_networks, n_inputs = _check_size("n_networks", n_networks), _check_size("n_inputs", n_inputs)
    if not isinstance(activation, str):
        raise ValueError(f"activation must be a name (it labels the samples); got {activation!r}")
    get_activation(activation)
    _resolve_scale(weight_scale)
    if readout not in READOUTS:
        raise ValueError(f"unknown readout {readout!r}; use one of {READOUTS}")
    params, X = _draw_kernel(key, widths, n_networks, n_inputs, weight_scale, readout)
    return params.replace(activation=activation), X


def one_step_samples(params: MLPParams, X: Any, s: Any, *,
                     weight_scale: str | float = "lecun") -> OneStepSamples:
    """The fixed step x' = x − s·sign(f(x))·∇f(x) on given stacked networks.

    One jitted call (:func:`one_step_kernel`) vmapped over the N networks; for each network
    the kernel of :func:`mini_adv.attacks.gradient_step` runs for every s (vmapped over s,
    while f and ∇f are computed once per input), so every flip is verified by re-evaluating
    f at x', and inputs with f(x) = 0 or ∇f(x) = 0 are reported by status, never as flips.

    Args:
        params: a stack of N networks (``init_params(..., n=N)`` or :func:`draw_networks`);
            its activation must be a name.
        X: ``(N, n, d)`` inputs, ``X[k]`` for network k.
        s: step size(s) > 0.
        weight_scale: the scale the networks were drawn with (only labels the prediction).

    Returns:
        :class:`OneStepSamples`.

    Raises:
        ValueError: for an unstacked ``params``, a callable activation, a shape mismatch,
            non-finite inputs, or s ≤ 0.
    """
    s_arr = _check_steps(s).reshape(-1)
    if not isinstance(params, MLPParams) or params.num_networks is None:
        raise ValueError("params must be a stack of networks (init_params(..., n=N)); for one "
                         "network use attacks.gradient_step")
    if not isinstance(params.activation, str):
        raise ValueError("params.activation must be a name (it labels the samples and the prediction)")
    X = jnp.asarray(X)
    N, d = params.num_networks, params.widths[0]
    if X.ndim != 3 or X.shape[0] != N or X.shape[2] != d or X.shape[1] == 0:
        raise ValueError(f"X must have shape (N, n, d) = ({N}, n, {d}) with n ≥ 1; got {tuple(X.shape)}")
    if not bool(jnp.all(jnp.isfinite(X))):
        raise ValueError("X contains NaN or inf; pass finite values")
    f, gn, f_adv, flipped, status = (np.asarray(o) for o in
                                     one_step_kernel(params, X, jnp.asarray(s_arr, X.dtype)))
    return OneStepSamples(widths=tuple(int(w) for w in params.widths), activation=params.activation,
                          weight_scale=weight_scale, s=s_arr, f=f, grad_norm=gn, f_adv=f_adv,
                          flipped=flipped, status=status)


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
        ValueError: for non-positive widths or counts (d, m < 1), an unknown activation,
            weight scale or readout, or s ≤ 0.
    """
    _check_steps(s)
    params, X = draw_networks(key, widths, n_networks=n_networks, n_inputs=n_inputs,
                              activation=activation, weight_scale=weight_scale, readout=readout)
    return one_step_samples(params, X, s, weight_scale=weight_scale)


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------

def plot_joint(ax: Any, samples: OneStepSamples, i: int = 0, *, max_points: int = 3000,
               legend: bool = True) -> None:
    """Scatter of (f(x), f(x')) at step ``s[i]`` against the prediction f' = f − s·sign(f)·χ.

    χ = E‖∇f‖² from :meth:`OneStepSamples.moments`; the predicted flip region |f(x)| < s·χ is
    shaded. Flipped samples are red, the others blue.
    """
    from mini_adv.figures.style import PALETTE

    s = float(samples.s[i])
    f, fa, fl = samples.f.ravel(), samples.f_adv[i].ravel(), samples.flipped[i].ravel()
    keep = slice(None, max_points)
    chi = samples.moments()[1]
    lim = float(np.quantile(np.abs(f), 0.995)) * 1.05
    ax.axvspan(-s * chi, s * chi, color=PALETTE["muted"], alpha=0.12, lw=0,
               label=r"predicted flips: $|f(x)| < s\,\mathbb{E}\sigma'(G)^2$")
    ax.plot(f[keep][fl[keep]], fa[keep][fl[keep]], ".", ms=3, alpha=0.5,
            color=PALETTE["gradient"], label="flipped")
    ax.plot(f[keep][~fl[keep]], fa[keep][~fl[keep]], ".", ms=3, alpha=0.5,
            color=PALETTE["random"], label="not flipped")
    for branch, label in ((np.linspace(0.0, lim, 101), r"$f(x) - s\,\mathrm{sign}(f)\,\mathbb{E}\sigma'(G)^2$"),
                          (np.linspace(-lim, 0.0, 101), None)):
        ax.plot(branch, branch - s * np.sign(branch.mean()) * chi, "--",
                color=PALETTE["theory"], lw=1.5, label=label)
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, color="black", lw=0.6)
    ax.set(xlim=(-lim, lim), xlabel=r"$f(x)$", ylabel=r"$f(x')$")
    if legend:
        ax.legend(loc="upper left", fontsize=8)


def plot_flip_curves(ax: Any, results: Mapping[str, OneStepSamples], *,
                     s_max: float | None = None) -> None:
    """Measured flip rates (±2 s.e. over networks) against s, one colour per entry, with each
    entry's predicted law dashed in the same colour (one black dashed line when all
    predictions coincide)."""
    from mini_adv.figures.style import CYCLE, PALETTE

    items = list(results.items())
    s_max = s_max or max(float(r.s.max()) for _, r in items)
    grid = np.linspace(s_max / 200, s_max, 200)
    preds = [r.predicted_flip_rate(grid) for _, r in items]
    shared = all(np.allclose(p, preds[0], atol=1e-9) for p in preds)
    for k, ((label, r), pred) in enumerate(zip(items, preds)):
        color = CYCLE[k % len(CYCLE)]
        ax.errorbar(r.s, r.flip_rate, yerr=2 * r.flip_rate_se, fmt="o", ms=4, capsize=2,
                    color=color, label=f"{label} (measured)")
        if not shared:
            ax.plot(grid, pred, "--", color=color, lw=1.2)
    if shared:
        ax.plot(grid, preds[0], "--", color=PALETTE["theory"], lw=1.5, label="prediction")
    else:
        ax.plot([], [], "--", color=PALETTE["theory"], label=r"prediction $2\Phi(\cdot) - 1$")
    ax.set(xlabel=r"step size $s$", ylabel="fraction of inputs flipped", ylim=(0, 1.03),
           xlim=(0, s_max * 1.02))


def plot_residual_spread(ax: Any, curves: Mapping[str, Sequence[OneStepSamples]],
                         i: int = 0) -> dict[str, float]:
    """Standard deviation of the residual f(x') − (f(x) − s·sign(f)‖∇f‖²) at step ``s[i]``
    against d, one line per entry (log-log, fitted power law in the legend).

    Returns:
        The fitted slope per entry.
    """
    from mini_adv.figures.style import CYCLE
    from mini_adv.rmt import fit_power_law

    slopes = {}
    for k, (label, runs) in enumerate(curves.items()):
        dims = np.array([r.d for r in runs], float)
        sd = np.array([float(r.residual[i].std()) for r in runs])
        slope, const = fit_power_law(dims, sd)
        slopes[label] = slope
        color = CYCLE[k % len(CYCLE)]
        ax.plot(dims, sd, "o", color=color, label=f"{label}: fit $\\propto d^{{{slope:.2f}}}$")
        ax.plot(dims, const * dims**slope, "-", color=color, lw=1)
    ax.set(xscale="log", yscale="log", xlabel="input dimension $d$",
           ylabel="s.d. of the residual $f(x') - f_{\\rm lin}(x')$")
    dims = sorted({r.d for runs in curves.values() for r in runs})
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.minorticks_off()
    ax.legend(fontsize=9)
    return slopes


def plot_independence(fig: Any, ind: IndependenceSamples, *, threshold: float = 1.5,
                      max_points: int = 3000) -> None:
    """Three panels: ⟨w, u⟩ against g = ⟨w, x⟩ for rows of W (left) and ⟨P⊥w, u⟩ against g
    for rows of W P⊥ (middle), and the histograms of ⟨P⊥w, u⟩ for |g| > threshold and for
    |g| < 1/threshold with the predicted law N(0, sin²θ/d) dashed, beside the histogram of
    ⟨w, u⟩ for |g| > threshold (right)."""
    from mini_adv.figures.style import PALETTE

    ax1, ax2, ax3 = fig.subplots(1, 3)
    k = slice(None, max_points)
    lim = 1.05 * float(np.max(np.abs(ind.w_u[k])))
    for ax, y, color, what in ((ax1, ind.w_u, PALETTE["random"], r"\langle w_i, u\rangle"),
                               (ax2, ind.perp_u, PALETTE["gradient"], r"\langle P_\perp w_i, u\rangle")):
        r = float(np.corrcoef(ind.g, y)[0, 1])
        ax.plot(ind.g[k], y[k], ".", ms=2.5, alpha=0.5, color=color)
        ax.set(xlabel=r"$g_i = \langle w_i, x\rangle$", ylabel=f"${what}$", ylim=(-lim, lim),
               title=f"corr = {r:.3f} ({ind.g.size} rows)")
    big, small = ind.split(threshold)
    sd = math.sqrt((1.0 - ind.cos_angle**2) / ind.d)  # predicted s.d. of ⟨P⊥w, u⟩
    grid = np.linspace(-lim, lim, 201)
    opts = dict(bins=np.linspace(-lim, lim, 61), density=True, histtype="step", lw=1.6)
    ax3.hist(ind.perp_u[big], color=PALETTE["gradient"],
             label=rf"$\langle P_\perp w, u\rangle$, $|g| > {threshold:g}$", **opts)
    ax3.hist(ind.perp_u[small], color=PALETTE["accent"],
             label=rf"$\langle P_\perp w, u\rangle$, $|g| < {1 / threshold:.2f}$", **opts)
    ax3.hist(ind.w_u[big], color=PALETTE["random"],
             label=rf"$\langle w, u\rangle$, $|g| > {threshold:g}$", **opts)
    ax3.plot(grid, np.exp(-grid**2 / (2 * sd**2)) / (sd * math.sqrt(2 * math.pi)), "--",
             color=PALETTE["theory"], label=r"$\mathcal{N}(0, \sin^2\theta/d)$")
    ax3.set_ylim(0, 1.55 * ax3.get_ylim()[1])  # room for the legend above the peak
    ax3.set(xlabel=r"projection on $u$", ylabel="density", title="law given $|g|$ large or small")
    ax3.legend(loc="upper left", fontsize=7.5)
    fig.tight_layout()


def draw_law_frame(fig: Any, results: Mapping[str, OneStepSamples], activation: str,
                   s: float) -> None:
    """One frame of the chapter's interactive figure: for ``activation``, the measured flip
    rates against the predicted law with step ``s`` marked (left), and the joint scatter of
    (f(x), f(x')) at that s (right)."""
    from mini_adv.figures.style import PALETTE

    r = results[activation]
    i = int(np.argmin(np.abs(r.s - s)))
    ax1, ax2 = fig.subplots(1, 2)
    plot_flip_curves(ax1, {activation: r})
    p_hat, p = float(r.flip_rate[i]), float(r.predicted_flip_rate()[i])
    ax1.plot([r.s[i]], [p_hat], "o", ms=11, mfc="none", mec=PALETTE["gradient"], mew=2,
             label=f"s = {r.s[i]:g}: measured {p_hat:.3f}, predicted {p:.3f}")
    ax1.legend(loc="lower right", fontsize=8)
    ax1.set_title(f"{activation}: flip rate of one step")
    plot_joint(ax2, r, i, max_points=1000)
    ax2.set_title(f"{activation}, s = {r.s[i]:g}: $(f(x), f(x'))$")
    fig.tight_layout()

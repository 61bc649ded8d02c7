"""Chapter 5: training itself produces non-robust networks (Vardi, Yehudai & Shamir 2022).

A depth-2 ReLU network with optional hidden biases,

    N_θ(x) = Σ_j v_j σ(w_jᵀx + b_j),      θ = (W, b, v),  σ = ReLU,

is positively 2-homogeneous in its parameters: N_{cθ} = c² N_θ for c > 0 (the biases scale
with the weights, so they keep the homogeneity; ‖θ‖² = Σ_j ‖w_j‖² + b_j² + v_j²). Trained
with the logistic or exponential loss, gradient flow converges in direction to a KKT point
of the max-margin problem

    min ½‖θ‖²   s.t.   y_i N_θ(x_i) ≥ 1  for all i                                  (P)

(Lyu & Li 2020; Ji & Telgarsky 2020). On nearly orthogonal data every such KKT point has
class-pure units and non-negative biases, and one direction û ∝ Σ_i y_i x_i flips every
training point at distance of order ‖x‖/√n (Vardi, Yehudai & Shamir 2022), although the
network :func:`robust_network` fits the same data with a certified radius about √n/2 times
larger. This module trains, checks and attacks such networks:

==================================  ======================================================
:class:`TwoLayerNet`                the trainable network (Flax NNX), pure form MLPParams
:func:`train`                       GD or normalised GD, all steps in one jitted scan
:func:`normalized_margin`           γ̄(θ) = min_i y_i N_θ(x_i) / ‖θ‖²
:func:`kkt_check`                   λ ≥ 0 by NNLS, stationarity residual, support set
:func:`unit_structure`              class purity, bias signs, balancedness of the units
:func:`universal_direction`         û = Σ_i y_i x_i / ‖Σ_i y_i x_i‖
:func:`robust_network`              N_rob(x) = Σ_i y_i σ(⟨x_i, x⟩ − ‖x_i‖²/2), certified radius
:func:`flip_distances`              first flip along −y_i û and along the gradient
:func:`sweep_n`                     the same over n and many data sets (vmapped)
:func:`cluster_experiment`          Frei et al. (2023): accurate and non-robust at once
==================================  ======================================================

Flip distances are measured with :func:`mini_adv.attacks.ray_flip_distance` (its kernel
when vmapped), so a reported flip is a verified sign change.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mini_adv.attacks import ray_flip_distance, ray_flip_kernel
from mini_adv.data import _check_size, cluster_means, clusters, coherence, nearly_orthogonal
from mini_adv.gradients import flip_direction, flip_direction_from, value_and_input_grad_kernel
from mini_adv.nets import MLPParams, Network, apply, as_params, check_finite
from mini_adv.rmt import _check_positive, fit_power_law
from mini_adv.runtime import float64 as _float64_context
from mini_adv.runtime import progress

LOSSES = ("logistic", "exponential")
"""Exponential-tailed losses ℓ(u) of the margin u = y N(x): log(1 + e^{−u}) and e^{−u}."""

METHODS = ("gd", "ngd")
"""Plain gradient descent and normalised gradient descent (step ∝ ∇L/L)."""

DEFAULT_LR: dict[str, tuple[float, float]] = {"gd": (0.1, 0.1), "ngd": (0.1, 0.001)}
"""Default (first, last) step of :func:`train` (see ``lr`` there): GD constant, NGD decaying."""


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------


def _check_data(X: Any, y: Any) -> tuple[jax.Array, jax.Array]:
    """Validate a labelled data set: X (n, d) finite, y (n,) with every entry ±1."""
    X = jnp.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must have shape (n, d) with n, d ≥ 1; got shape {tuple(X.shape)}")
    if not jnp.issubdtype(X.dtype, jnp.floating):
        X = X.astype(jnp.result_type(float))
    check_finite("X", X)
    y = jnp.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape (n,) = ({X.shape[0]},) to match X {tuple(X.shape)}; "
                         f"got shape {tuple(y.shape)}")
    check_finite("y", y)
    if not bool(jnp.all((y == 1) | (y == -1))):
        bad = np.unique(np.asarray(y)[~np.isin(np.asarray(y), (-1, 1))])[:5]
        raise ValueError(f"labels y must be ±1 (e.g. 2·label − 1 for 0/1 labels); got values {bad}")
    return X, y.astype(X.dtype)


def _check_two_layer(params: MLPParams) -> None:
    if len(params.kernels) != 1 or params.readout.ndim != 1:
        raise ValueError("expected one depth-2 network N(x) = Σ_j v_j σ(w_jᵀx + b_j) (a TwoLayerNet "
                         f"or MLPParams with one kernel); got {len(params.kernels)} hidden layers")
    if params.activation != "relu":
        raise ValueError(f"the max-margin tools assume σ = ReLU; got activation {params.activation!r}")


def _params_and_data(net: Network, X: Any, y: Any) -> tuple[MLPParams, jax.Array, jax.Array]:
    params = as_params(net)
    _check_two_layer(params)
    X, y = _check_data(X, y)
    if X.shape[1] != params.widths[0]:
        raise ValueError(f"X has d = {X.shape[1]} but the network expects d = {params.widths[0]}")
    return params, X, y


# ---------------------------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------------------------


def init_two_layer(key: jax.Array, d: int, width: int, *, bias: bool = False,
                   init_scale: float = 1e-2) -> MLPParams:
    """Small random initialisation of N(x) = Σ_j v_j σ(w_jᵀx + b_j) in pure form.

        w_j ~ N(0, (init_scale²/d) I_d)  (so ‖w_j‖ ≈ init_scale),   v_j ~ N(0, init_scale²),
        b_j = 0  (if ``bias``).

    Units start nearly balanced (v_j² ≈ ‖w_j‖²), and ‖θ‖² ≈ 2·width·init_scale².

    Raises:
        ValueError: for non-positive sizes or a non-positive ``init_scale``.
    """
    d, width = _check_size("d", d), _check_size("width", width)
    init_scale = _check_positive("init_scale", init_scale)
    k_w, k_v = jax.random.split(key)
    K = jax.random.normal(k_w, (d, width)) * (init_scale / math.sqrt(d))
    v = jax.random.normal(k_v, (width,)) * init_scale
    return MLPParams(kernels=(K,), readout=v, biases=(jnp.zeros((width,)),) if bias else None)


class TwoLayerNet(nnx.Module):
    """TwoLayerNet(d, width, *, bias=False, init_scale=1e-2, rngs)

    The trainable depth-2 ReLU network of chapter 5 as a Flax NNX module,

        N(x) = Σ_{j=1}^{width} v_j σ(w_jᵀx + b_j),

    with parameters ``kernel`` (d, width) = [w_1 … w_m], ``bias`` (width,) or ``None``
    (bias-free), ``readout`` (width,) = v, initialised small by :func:`init_two_layer`.
    No output bias: N is 2-homogeneous in θ. ``net(x)`` maps ``(d,)`` to a scalar and
    ``(B, d)`` to ``(B,)``. ``net.params()`` returns the pure
    :class:`~mini_adv.nets.MLPParams` form, so every attack of :mod:`mini_adv.attacks`
    accepts a ``TwoLayerNet`` (through :func:`~mini_adv.nets.as_params`).

    Example:
        >>> net = TwoLayerNet(100, 32, rngs=nnx.Rngs(0))
        >>> net(jnp.ones((8, 100))).shape
        (8,)
    """

    def __init__(self, d: int, width: int, *, bias: bool = False, init_scale: float = 1e-2,
                 rngs: nnx.Rngs):
        p = init_two_layer(rngs.params(), d, width, bias=bias, init_scale=init_scale)
        self._set(p)

    def _set(self, p: MLPParams) -> None:
        self.kernel = nnx.Param(p.kernels[0])
        self.bias = nnx.Param(p.biases[0]) if p.biases is not None else None
        self.readout = nnx.Param(p.readout)

    @classmethod
    def from_params(cls, params: MLPParams) -> "TwoLayerNet":
        """A ``TwoLayerNet`` holding the arrays of a one-hidden-layer ReLU :class:`MLPParams`.

        Raises:
            ValueError: if ``params`` is not a single one-hidden-layer ReLU network.
        """
        _check_two_layer(params)
        d, width = params.widths
        net = cls(d, width, bias=params.biases is not None, rngs=nnx.Rngs(0))
        net._set(params)
        return net

    @property
    def width(self) -> int:
        return int(self.readout[...].shape[0])

    @property
    def has_bias(self) -> bool:
        return self.bias is not None

    def params(self) -> MLPParams:
        """The pure form: an :class:`~mini_adv.nets.MLPParams` with one kernel."""
        return MLPParams(kernels=(self.kernel[...],), readout=self.readout[...],
                         biases=(self.bias[...],) if self.bias is not None else None,
                         activation="relu")

    def __call__(self, x: jax.Array) -> jax.Array:
        check_finite("input x", x)
        return apply(self.params(), jnp.asarray(x))


def _sqnorm(p: Any) -> jax.Array:
    return sum(jnp.sum(a * a) for a in jax.tree.leaves(p))


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


def log_loss_terms(u: jax.Array, loss: str = "logistic") -> tuple[jax.Array, jax.Array]:
    """``(log ℓ(u), log(−ℓ'(u)))`` elementwise, finite for every finite u.

    Exponential: both are −u. Logistic: ℓ(u) = softplus(−u) and −ℓ'(u) = 1/(1 + e^u), so
    log(−ℓ') = −softplus(u); log ℓ uses softplus(z) = e^z(1 − e^z/2 + …) for z = −u < −30,
    where log(softplus(z)) would underflow to log 0.
    """
    if loss == "exponential":
        return -u, -u
    z = -u
    tail = z < -30.0
    log_l = jnp.where(tail, z - 0.5 * jnp.exp(jnp.where(tail, z, 0.0)),
                      jnp.log(jax.nn.softplus(jnp.where(tail, 0.0, z))))
    return log_l, -jax.nn.softplus(u)


@partial(jax.jit, static_argnames=("loss",))
def normalized_gradient(params: MLPParams, X: jax.Array, y: jax.Array,
                        loss: str = "logistic") -> MLPParams:
    """∇_θL/L of the mean loss L(θ) = (1/n) Σ_i ℓ(y_i N_θ(x_i)), in log space.

        ∇L/L = −Σ_i q_i ∇_θ u_i,   u_i = y_i N_θ(x_i),
        q_i = exp( log(−ℓ'(u_i)) − logsumexp_k log ℓ(u_k) )

    (step 3 of the chapter's normalised-GD algorithm; Lyu & Li 2020 for the normalised
    flow). Every logarithm comes from :func:`log_loss_terms`, so the result is finite for any
    margins, also where L itself underflows to 0 and the naive ∇L/L is 0/0. A pure kernel of
    ``(params, X (n, d), y (n,))`` without input checks: the reference for chapter 5's code
    exercise (:func:`mini_adv.checks.check_ngd_direction`). Returns a pytree like ``params``.
    """
    u, vjp = jax.vjp(lambda p: y * apply(p, X), params)
    log_l, log_d = log_loss_terms(u, loss)
    (g,) = vjp(-jnp.exp(log_d - jax.scipy.special.logsumexp(log_l)))
    return g


@partial(jax.jit, static_argnames=("steps", "loss", "method"))
def train_kernel(params: MLPParams, X: jax.Array, y: jax.Array, lr_first: jax.Array,
                 lr_last: jax.Array, steps: int, loss: str = "logistic", method: str = "ngd"
                 ) -> tuple[MLPParams, tuple[jax.Array, ...]]:
    """Pure kernel of :func:`train` (no checks; vmap it over data sets and initialisations).

    Carries θ = e^s φ with ‖φ‖ = 1 (an exact reparametrisation that keeps every array in
    range however large ‖θ‖ grows). Rows with y_i = 0 are padding: they contribute nothing
    (their margin y_i N(x_i) is identically 0) and are left out of L, the minimum and the
    accuracy. Returns the final φ and per-step records
    ``(log L, min_i u_i(φ), s, training accuracy)``, each of shape ``(steps + 1,)``: entry t
    is the state after t steps.
    """
    real = y != 0
    n = jnp.sum(real)
    extra = 0.0 if params.biases is None else 1.0
    R = jnp.sqrt(jnp.max(jnp.sum(X * X, axis=-1)) + extra)
    # e^{2s} is capped at √(max float): beyond it the weights q are one-hot anyway
    log_cap = 0.5 * math.log(float(jnp.finfo(X.dtype).max))

    def margins(phi: MLPParams) -> jax.Array:
        return y * apply(phi, X)

    def evaluate(phi: MLPParams, s: jax.Array):
        um, vjp = jax.vjp(margins, phi)
        u = jnp.exp(jnp.minimum(2.0 * s, log_cap)) * um           # u_i(θ) = e^{2s} u_i(φ)
        log_l, log_d = log_loss_terms(u, loss)
        lse = jax.scipy.special.logsumexp(jnp.where(real, log_l, -jnp.inf))  # log Σ_i ℓ(u_i)
        # the recorded log L uses the uncapped margins: −inf once they overflow
        true_l = log_loss_terms(jnp.exp(2.0 * s) * um, loss)[0]
        log_loss = jax.scipy.special.logsumexp(jnp.where(real, true_l, -jnp.inf)) - jnp.log(n)
        record = (log_loss, jnp.min(jnp.where(real, um, jnp.inf)), s,
                  jnp.sum(real & (um > 0)) / n)
        return vjp, log_d, lse, record

    def step(carry, t):
        phi, s = carry
        vjp, log_d, lse, record = evaluate(phi, s)
        if method == "ngd":
            q = jnp.exp(log_d - lse)      # −ℓ'(u_i) / Σ_k ℓ(u_k): ∇L/L = −Σ q_i ∇u_i
        else:
            q = jnp.exp(log_d) / n        # −ℓ'(u_i) / n:          ∇L   = −Σ q_i ∇u_i
        q = jnp.where(real, q, 0.0)
        frac = jnp.clip((t - steps // 2) / max(steps - 1 - steps // 2, 1), 0.0, 1.0)
        lr = lr_first * (lr_last / lr_first) ** frac      # constant, then geometric
        (g,) = vjp(q)                     # Σ_i q_i ∇_φ u_i(φ);  ∇_θ u_i(θ) = e^s ∇_φ u_i(φ)
        new = jax.tree.map(lambda a, b: a + (lr / R) * b, phi, g)
        norm = jnp.sqrt(_sqnorm(new))
        return (jax.tree.map(lambda a: a / norm, new), s + jnp.log(norm)), record

    norm0 = jnp.sqrt(_sqnorm(params))
    init = (jax.tree.map(lambda a: a / norm0, params), jnp.log(norm0))
    (phi, s), records = jax.lax.scan(step, init, jnp.arange(steps))
    final = evaluate(phi, s)[3]
    records = tuple(jnp.concatenate([r, jnp.asarray(f)[None].astype(r.dtype)])
                    for r, f in zip(records, final))
    return phi, records


@dataclasses.dataclass(frozen=True)
class TrainHistory:
    """What :func:`train` recorded; arrays of shape ``(steps + 1,)``, entry t after t steps.

    Attributes:
        method, loss: as passed to :func:`train`.
        log_loss: log L(θ_t), L the mean loss (finite where L itself underflows, down to
            about −(largest float); −inf beyond).
        normalized_margin: γ̄(θ_t) = min_i y_i N_{θ_t}(x_i) / ‖θ_t‖².
        log_norm: log ‖θ_t‖.
        accuracy: fraction of training points with y_i N(x_i) > 0.
    """

    method: str
    loss: str
    log_loss: np.ndarray
    normalized_margin: np.ndarray
    log_norm: np.ndarray
    accuracy: np.ndarray

    @property
    def steps(self) -> np.ndarray:
        """``0, 1, …, steps``."""
        return np.arange(self.log_loss.shape[-1])

    @property
    def fitted_at(self) -> int | None:
        """The first step after which every training point is classified correctly (or None)."""
        hit = np.flatnonzero(self.accuracy >= 1.0)
        return int(hit[0]) if hit.size else None


def _resolve_lr(lr: Any, method: str) -> tuple[float, float]:
    if lr is None:
        return DEFAULT_LR[method]
    if isinstance(lr, (tuple, list)):
        if len(lr) != 2:
            raise ValueError(f"lr must be a number or a pair (first, last); got {lr!r}")
        return _check_positive("lr (first)", lr[0]), _check_positive("lr (last)", lr[1])
    v = _check_positive("lr", lr)
    return v, v


def train(X: Any, y: Any, *, width: int, bias: bool = False, loss: str = "logistic",
          method: str = "ngd", steps: int, key: jax.Array, lr: float | tuple[float, float] | None = None,
          init_scale: float = 1e-2, float64: bool = False) -> tuple[TwoLayerNet, TrainHistory]:
    """Train a :class:`TwoLayerNet` on (X, y) by gradient descent or normalised GD.

    With L(θ) = (1/n) Σ_i ℓ(u_i),  u_i = y_i N_θ(x_i),  R = maxᵢ ‖(x_i, 1)‖ (‖x_i‖ without bias):

        gd:   θ ← θ − (η_t/R) ∇L(θ)
        ngd:  θ ← θ − (η_t/R) ∇L(θ)/L(θ),     ∇L/L = −Σ_i q_i y_i ∇_θ N_θ(x_i),
        q = exp(log(−ℓ'(u)) − logsumexp(log ℓ(u)))     (= softmax(−u) for ℓ = e^{−u})

    computed in log space so that q stays exact when L underflows (loss below 10⁻⁴⁰ is
    normal here). Since ‖∇_θ u_i‖ ≤ ‖θ‖‖(x_i, 1)‖, an NGD step moves θ by at most the
    fraction η_t of ‖θ‖; GD's step is that times about L. The step η_t is ``lr[0]`` for the
    first half of the steps (the escape from the small initialisation takes most of it),
    then falls geometrically to ``lr[1]`` at the last step (a number: constant). NGD's norm grows exponentially in t,
    GD's logarithmically (the slow margin growth of constant-step GD). All steps run in one
    jitted ``lax.scan`` (:func:`train_kernel`), which carries θ = e^s φ with ‖φ‖ = 1.

    Lyu & Li (2020) and Ji & Telgarsky (2020): once every point is fitted, gradient flow
    increases the normalised margin γ̄ = min_i u_i/‖θ‖² and converges in direction to a KKT
    point of (P); NGD follows the same directions faster (Nacson et al. 2019 for linear models).

    Args:
        X: ``(n, d)`` training inputs. y: ``(n,)`` labels in {±1}.
        width: number of hidden units m ≥ 1. bias: train hidden biases b_j.
        loss: ``"logistic"`` or ``"exponential"``. method: ``"gd"`` or ``"ngd"``.
        steps: number of steps ≥ 1. key: PRNG key of the initialisation.
        lr: η (constant) or (η_first, η_last); default :data:`DEFAULT_LR`.
        init_scale: initial scale of :func:`init_two_layer` (small: ‖w_j‖ ≈ |v_j| ≈ init_scale).
        float64: compute in float64 (JAX's x64 mode inside, for this call only): the weights
            q stay accurate to margins u of about 10¹⁵ instead of 10⁶.

    Returns:
        ``(net, history)``: the trained direction θ/‖θ‖ as a :class:`TwoLayerNet` (unit
        norm, in X's dtype; signs, flip distances, γ̄ and the KKT direction do not depend on
        the scale, and N_θ = ‖θ‖² N_{θ/‖θ‖}; ‖θ‖ itself is ``exp(history.log_norm[-1])``), and
        the :class:`TrainHistory`.

    Raises:
        ValueError: for mismatched shapes, NaN/inf, labels other than ±1, an unknown loss or
            method, or a non-positive width, steps, lr or init_scale.
    """
    X, y = _check_data(X, y)
    width, steps = _check_size("width", width), _check_size("steps", steps)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; use one of {LOSSES}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    lr_first, lr_last = _resolve_lr(lr, method)
    p0 = init_two_layer(key, X.shape[1], width, bias=bool(bias), init_scale=init_scale)
    dtype = X.dtype
    if float64:
        with _float64_context():
            cast = lambda a: jnp.asarray(a, jnp.float64)  # noqa: E731
            phi, rec = train_kernel(jax.tree.map(cast, p0), cast(X), cast(y), cast(lr_first),
                                    cast(lr_last), steps, loss, method)
            phi = jax.tree.map(lambda a: np.asarray(a), phi)
            rec = [np.asarray(r, np.float64) for r in rec]
        phi = jax.tree.map(lambda a: jnp.asarray(a, dtype), phi)
    else:
        phi, rec = train_kernel(p0, X, y, jnp.asarray(lr_first, dtype), jnp.asarray(lr_last, dtype),
                                steps, loss, method)
        rec = [np.asarray(r, np.float64) for r in rec]
    history = TrainHistory(method=method, loss=loss, log_loss=rec[0], normalized_margin=rec[1],
                           log_norm=rec[2], accuracy=rec[3])
    return TwoLayerNet.from_params(phi), history


def normalized_margin(net: Network, X: Any, y: Any) -> float:
    """γ̄(θ) = min_i y_i N_θ(x_i) / ‖θ‖², the normalised margin of a 2-homogeneous network.

    Scale-free: γ̄(cθ) = γ̄(θ) because N_{cθ} = c² N_θ (degree-2 homogeneity; the hidden
    biases count in ‖θ‖² like the weights). The KKT points of (P) are the stationary
    points of γ̄; a point scaled to min_i y_i N(x_i) = 1 has ‖θ‖² = 1/γ̄ (Lyu & Li 2020).
    Negative when some point is misclassified.

    Raises:
        ValueError: for a network that is not depth-2 ReLU, mismatched shapes, NaN/inf or
            labels other than ±1.
    """
    params, X, y = _params_and_data(net, X, y)
    return float(jnp.min(y * apply(params, X)) / _sqnorm(params))


# ---------------------------------------------------------------------------------------------
# KKT conditions
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KKTReport:
    """The KKT conditions of (P) checked at a trained network (see :func:`kkt_check`).

    Attributes:
        lam: ``(n,)`` multipliers λ_i ≥ 0 for θ scaled to min_i y_i N(x_i) = 1.
        margins: ``(n,)`` y_i N(x_i) after that scaling (the smallest is 1).
        support: ``(n,)`` bool, margin ≤ 1 + ``support_tol`` (the points on the margin).
        residual: ‖θ − Σ_i λ_i y_i ∂_θ N(x_i)‖ / ‖θ‖ at the fitted λ (and kink coefficients).
        slackness: Σ_i λ_i (margin_i − 1) / Σ_i λ_i (complementary slackness: 0 at a KKT point).
        kink_pairs: number of (unit, point) pairs treated as sitting on the ReLU kink.
        kink_excess: max_ij (μ_ij − λ_i)₊ / max λ, how far the fitted kink coefficients
            leave their range [0, λ_i] (0 when they stay inside).
        scale: the factor c with θ_scaled = c θ.
    """

    lam: np.ndarray
    margins: np.ndarray
    support: np.ndarray
    residual: float
    slackness: float
    kink_pairs: int
    kink_excess: float
    scale: float

    def summary(self) -> dict[str, float]:
        lam_s = self.lam[self.support]
        return {"residual": self.residual, "slackness": self.slackness,
                "support_size": int(self.support.sum()), "n": int(self.lam.size),
                "lam_spread": float(lam_s.max() / lam_s.min()) if lam_s.size and lam_s.min() > 0
                else math.inf,
                "kink_pairs": self.kink_pairs, "kink_excess": self.kink_excess}


def kkt_check(net: Network, X: Any, y: Any, *, kink_tol: float = 1e-3,
              support_tol: float = 0.05, max_entries: int = 20_000_000) -> KKTReport:
    """Fit the KKT multipliers of (P) at a trained network and report how well they fit.

    Scale θ so that min_i y_i N(x_i) = 1, then solve the stationarity equations

        θ = Σ_i λ_i y_i ∂_θ N_θ(x_i),   λ ≥ 0,

    by non-negative least squares (``scipy.optimize.nnls``). For N = Σ_j v_j σ(w_jᵀx + b_j)
    they read, unit by unit (σ'_ij = σ'(w_jᵀx_i + b_j)):

        v_j = Σ_i λ_i y_i σ(w_jᵀx_i + b_j),   w_j = v_j Σ_i λ_i y_i σ'_ij x_i,
        b_j = v_j Σ_i λ_i y_i σ'_ij.

    ReLU is not differentiable at 0, and KKT points of (P) put units *exactly* on the kink
    at some points (a unit of one class is pushed to w_jᵀx_i + b_j = 0 at points of the other
    class); the KKT conditions then hold with a Clarke subgradient: σ'_ij λ_i is replaced by
    any μ_ij ∈ [0, λ_i]. Pairs with |w_jᵀx_i + b_j| ≤ ``kink_tol``·‖(w_j, b_j)‖‖(x_i, 1)‖
    get such a free coefficient μ_ij ≥ 0 (the bound μ_ij ≤ λ_i is checked afterwards,
    ``kink_excess``); ``kink_tol = 0`` fits λ alone with σ'(0) = 0. The w-equations are
    solved in the span of the x_i (their part outside it adds to the residual as it is).

    Args:
        net: a trained :class:`TwoLayerNet` (or its MLPParams).
        X, y: the training data, labels ±1.
        kink_tol: relative pre-activation below which a pair counts as on the kink.
        support_tol: points with scaled margin ≤ 1 + support_tol form the support set.
        max_entries: refuse NNLS problems larger than this many matrix entries.

    Returns:
        :class:`KKTReport`.

    Raises:
        ValueError: if some point is not fitted (y_i N(x_i) ≤ 0: train longer before a KKT
            check), for mismatched shapes, NaN/inf, labels other than ±1, or a problem larger
            than ``max_entries``.
    """
    import scipy.optimize

    params, X, y = _params_and_data(net, X, y)
    if not (isinstance(kink_tol, (int, float)) and 0 <= kink_tol < 1):
        raise ValueError(f"kink_tol must lie in [0, 1), got {kink_tol!r}")
    _check_positive("support_tol", support_tol)
    Xn, yn = np.asarray(X, np.float64), np.asarray(y, np.float64)
    K = np.asarray(params.kernels[0], np.float64)
    v = np.asarray(params.readout, np.float64)
    has_b = params.biases is not None
    b = np.asarray(params.biases[0], np.float64) if has_b else np.zeros_like(v)
    n, m = Xn.shape[0], v.size
    Z = Xn @ K + b
    u = yn * (np.maximum(Z, 0.0) @ v)
    if np.min(u) <= 0:
        bad = int(np.sum(u <= 0))
        raise ValueError(f"the network does not fit the data yet: {bad} of {n} points have "
                         f"y_i N(x_i) ≤ 0 (min {np.min(u):.3g}); the KKT conditions of the max-margin "
                         "problem only apply once every point is fitted: train longer (more steps "
                         "or a larger lr)")
    c = 1.0 / math.sqrt(np.min(u))
    K, v, b, Z, u = c * K, c * v, c * b, c * Z, u * c * c
    xs = np.sqrt(np.sum(Xn * Xn, axis=1) + (1.0 if has_b else 0.0))
    ws = np.sqrt(np.sum(K * K, axis=0) + b * b)
    rel = Z / np.maximum(xs[:, None] * ws[None, :], np.finfo(float).tiny)
    kink = np.abs(rel) <= kink_tol
    act = (~kink & (Z > 0)).astype(float)
    Q, Rm = np.linalg.qr(Xn.T)                       # X^T = Q R: x_i = Q R[:, i]
    Wq = Q.T @ K                                     # in-span coordinates of every w_j
    perp2 = float(np.sum((K - Q @ Wq) ** 2))         # the part of W outside span{x_i}
    k = Q.shape[1]
    rows = k + 1 + int(has_b)
    pairs = np.argwhere(kink)                        # (i, j)
    cols = n + len(pairs)
    if m * rows * cols > max_entries:
        raise ValueError(f"the NNLS problem has {m * rows} × {cols} entries, above max_entries = "
                         f"{max_entries}; use fewer units or points, or a smaller kink_tol")
    A = np.zeros((m, rows, cols))
    t = np.zeros((m, rows))
    A[:, :k, :n] = v[:, None, None] * Rm[None, :, :] * (yn[None, :] * act.T)[:, None, :]
    t[:, :k] = Wq.T
    A[:, k, :n] = (yn[:, None] * np.maximum(Z, 0.0)).T
    t[:, k] = v
    if has_b:
        A[:, k + 1, :n] = v[:, None] * yn[None, :] * act.T
        t[:, k + 1] = b
    for col, (i, j) in enumerate(pairs, start=n):
        A[j, :k, col] = v[j] * yn[i] * Rm[:, i]
        if has_b:
            A[j, k + 1, col] = v[j] * yn[i]
    sol, res = scipy.optimize.nnls(A.reshape(m * rows, cols), t.reshape(-1), maxiter=50 * cols)
    lam, mu = sol[:n], sol[n:]
    theta2 = float(np.sum(K * K) + np.sum(v * v) + np.sum(b * b))
    residual = math.sqrt(res ** 2 + perp2) / math.sqrt(theta2)
    excess = float(np.max(np.maximum(mu - lam[pairs[:, 0]], 0.0))) / max(lam.max(), 1e-300) \
        if len(pairs) else 0.0
    slack = float(np.sum(lam * (u - 1.0)) / max(np.sum(lam), 1e-300))
    return KKTReport(lam=lam, margins=u, support=u <= 1.0 + support_tol, residual=residual,
                     slackness=slack, kink_pairs=len(pairs), kink_excess=excess, scale=c)


# ---------------------------------------------------------------------------------------------
# structure of the units
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UnitStructure:
    """The units of a depth-2 network against the KKT predictions (see :func:`unit_structure`).

    Attributes:
        scale: ``(m,)`` |v_j| ‖(w_j, b_j)‖, the size of unit j's output per unit input norm.
        significant: ``(m,)`` bool, scale ≥ ``fraction`` · max scale.
        sign: ``(m,)`` sign v_j (the class the unit votes for).
        active: ``(n, m)`` bool, w_jᵀx_i + b_j > tol·‖(w_j, b_j)‖‖(x_i, 1)‖.
        pure: ``(m,)`` bool, the unit is active on at least one point and only on points
            with y_i = sign v_j.
        bias: ``(m,)`` b_j / ‖(w_j, b_j)‖ (zeros for a bias-free network).
        balance: ``(m,)`` v_j² / (‖w_j‖² + b_j²) (1 at a KKT point).
        u_alignment: ``(m,)`` ⟨w_j, û⟩/‖w_j‖ with û from :func:`universal_direction`
            (its sign should be sign v_j: the universal direction lowers units of one class
            and raises the other's).
    """

    scale: np.ndarray
    significant: np.ndarray
    sign: np.ndarray
    active: np.ndarray
    pure: np.ndarray
    bias: np.ndarray
    balance: np.ndarray
    u_alignment: np.ndarray

    def summary(self) -> dict[str, float]:
        s = self.significant
        return {"units": int(s.size), "significant": int(s.sum()),
                "significant_pure": float(np.mean(self.pure[s])),
                "all_pure": float(np.mean(self.pure)),
                "aligned_with_u": float(np.mean(np.sign(self.u_alignment[s]) == self.sign[s])),
                "positive_units": int(np.sum(s & (self.sign > 0))),
                "negative_units": int(np.sum(s & (self.sign < 0))),
                "min_relative_bias": float(np.min(self.bias[s])),
                "balance_min": float(np.min(self.balance[s])),
                "balance_max": float(np.max(self.balance[s])),
                "mean_active_points": float(np.mean(np.sum(self.active[:, s], axis=0)))}


def unit_structure(net: Network, X: Any, y: Any, *, fraction: float = 0.1,
                   tol: float = 1e-3) -> UnitStructure:
    """Class purity, bias signs and balancedness of every unit, and which units matter.

    At a KKT point of (P) on nearly orthogonal data (Vardi, Yehudai & Shamir 2022):

    * **balancedness** v_j² = ‖w_j‖² + b_j² (from the stationarity equations and σ'(z)z = σ(z));
    * **class purity**: a unit with v_j > 0 is active only on points with y_i = +1 (v_j < 0:
      only y_i = −1), so w_j is a non-negative combination of same-class points;
    * **non-negative biases** b_j = v_j Σ_i λ_i y_i σ'_ij ≥ 0 for pure units;
    * hence ⟨w_j, û⟩ has the sign of v_j (``u_alignment``).

    A unit is *significant* when its scale |v_j|‖(w_j, b_j)‖ (which bounds its output per unit
    of ‖(x, 1)‖) is at least ``fraction`` × the largest; the others grew less from the small
    initialisation and matter little for N. Activity uses the relative threshold ``tol`` so
    that units sitting on the kink (pre-activation ≈ 0, see :func:`kkt_check`) count as
    inactive.

    Raises:
        ValueError: for mismatched shapes, NaN/inf, labels other than ±1, Σ_i y_i x_i = 0,
            ``fraction`` outside (0, 1] or a negative ``tol``.
    """
    params, X, y = _params_and_data(net, X, y)
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be ≥ 0, got {tol!r}")
    Xn, yn = np.asarray(X, np.float64), np.asarray(y, np.float64)
    K = np.asarray(params.kernels[0], np.float64)
    v = np.asarray(params.readout, np.float64)
    has_b = params.biases is not None
    b = np.asarray(params.biases[0], np.float64) if has_b else np.zeros_like(v)
    wn = np.sqrt(np.sum(K * K, axis=0) + b * b)
    xs = np.sqrt(np.sum(Xn * Xn, axis=1) + (1.0 if has_b else 0.0))
    scale = np.abs(v) * wn
    active = (Xn @ K + b) > tol * xs[:, None] * wn[None, :]
    sign = np.sign(v)
    agree = yn[:, None] == sign[None, :]
    pure = np.any(active, axis=0) & ~np.any(active & ~agree, axis=0)
    safe = np.where(wn > 0, wn, 1.0)
    u = np.asarray(universal_direction(X, y), np.float64)
    kn = np.linalg.norm(K, axis=0)
    return UnitStructure(scale=scale, significant=scale >= fraction * scale.max(), sign=sign,
                         active=active, pure=pure, bias=b / safe,
                         balance=np.where(wn > 0, v * v / safe ** 2, np.inf),
                         u_alignment=(u @ K) / np.where(kn > 0, kn, 1.0))


# ---------------------------------------------------------------------------------------------
# the universal direction and the robust network
# ---------------------------------------------------------------------------------------------


def universal_direction(X: Any, y: Any) -> jax.Array:
    """û = Σ_i y_i x_i / ‖Σ_i y_i x_i‖, the direction that flips a KKT network everywhere.

    At a KKT point on nearly orthogonal data, a unit voting for class +1 has
    w_j = v_j Σ_{i: y_i = +1} λ_i σ'_ij x_i, so ⟨w_j, û⟩ > 0, and a unit voting −1 has
    ⟨w_j, û⟩ < 0: moving a positive point along −û lowers every positive unit and switches
    on the negative ones (Vardi, Yehudai & Shamir 2022). Attack point i along −y_i û.

    Returns:
        ``(d,)`` unit vector.

    Raises:
        ValueError: for mismatched shapes, NaN/inf, labels other than ±1, or Σ_i y_i x_i = 0.
    """
    X, y = _check_data(X, y)
    s = y @ X
    norm = float(jnp.linalg.norm(s))
    if norm == 0.0:
        raise ValueError("Σ_i y_i x_i = 0: the universal direction is undefined for these data")
    return s / norm


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
    network. Its biases are negative, which a KKT point of (P) on such data cannot have.
    (The construction follows the robust networks of Vardi, Yehudai & Shamir 2022.)

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


# ---------------------------------------------------------------------------------------------
# flip distances
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FlipDistances:
    """First sign change along two rays from each training point (shapes ``(..., n)``).

    Attributes:
        universal: distance along −y_i û (:func:`universal_direction`), ``inf`` if no flip
            within the budget.
        gradient: distance along −sign(N(x_i)) ∇N(x_i)/‖∇N(x_i)‖.
        norms: ‖x_i‖.
    """

    universal: np.ndarray
    gradient: np.ndarray
    norms: np.ndarray

    @property
    def n(self) -> int:
        return int(self.norms.shape[-1])

    @property
    def predicted(self) -> np.ndarray:
        """‖x_i‖/√n, the flip size of the symmetric KKT network (prediction, up to constants)."""
        return self.norms / math.sqrt(self.n)

    def relative(self, which: str = "universal") -> np.ndarray:
        """√n · distance/‖x‖ (1 for the symmetric idealisation along û)."""
        return getattr(self, which) / self.predicted


def _flip_one(params: MLPParams, X: jax.Array, y: jax.Array, budget: jax.Array):
    s = y @ X
    U = -y[:, None] * (s / jnp.linalg.norm(s))[None, :]
    f, g = value_and_input_grad_kernel(params, X)
    gn = jnp.linalg.norm(g, axis=-1)
    r_u = ray_flip_kernel(params, X, U, budget, f_clean=f, grad_norm=gn)
    r_g = ray_flip_kernel(params, X, flip_direction_from(f, g), budget, f_clean=f, grad_norm=gn)
    return r_u.distance, r_g.distance


def flip_distances(net: Network, X: Any, y: Any, *, max_distance: float | None = None
                   ) -> FlipDistances:
    """Minimal flip distance of every training point along −y_i û and along its gradient.

    Both are first sign changes along a straight ray, measured by
    :func:`mini_adv.attacks.ray_flip_distance` (geometric bracketing, secant search, a
    crossing beyond float rounding noise). Vardi, Yehudai & Shamir (2022): at a KKT point on nearly orthogonal
    data, the first is O(‖x‖/√n); in the symmetric idealisation (balanced classes, exactly
    orthogonal points of equal norm, all on the margin) it is exactly ‖x‖/√n, while along
    the gradient N only reaches 0 at √2‖x‖/√n, without crossing (the gradient lowers the
    point's own class but does not switch on the other one); on real data it crosses a
    little later.

    Args:
        net: a :class:`TwoLayerNet` (or MLPParams). X, y: the data, labels ±1.
        max_distance: the budget per ray (default 2 maxᵢ ‖x_i‖).

    Returns:
        :class:`FlipDistances`.

    Raises:
        ValueError: for mismatched shapes, NaN/inf, labels other than ±1, Σ_i y_i x_i = 0
            or a non-positive budget.
    """
    params, X, y = _params_and_data(net, X, y)
    u = universal_direction(X, y)
    if max_distance is None:
        max_distance = 2.0 * float(jnp.max(jnp.linalg.norm(X, axis=-1)))
    r_u = ray_flip_distance(params, X, -y[:, None] * u[None, :], max_distance=max_distance)
    r_g = ray_flip_distance(params, X, flip_direction(params, X), max_distance=max_distance)
    return FlipDistances(universal=np.asarray(r_u.distance), gradient=np.asarray(r_g.distance),
                         norms=np.asarray(jnp.linalg.norm(X, axis=-1)))


# ---------------------------------------------------------------------------------------------
# experiments: the sweep over n, margin growth, clusters
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SweepPoint:
    """One n of :func:`sweep_n`: N independent data sets, each with its trained network.

    Attributes:
        n, d, width: sizes. trained: :class:`FlipDistances` of the trained networks,
            arrays ``(N, n)``.
        robust_radius: ``(N, n)`` certified radii of :func:`robust_network` on each data set.
        accuracy: ``(N,)`` training accuracy. margin: ``(N,)`` normalised margin γ̄.
        coherence: ``(N,)`` :func:`~mini_adv.data.coherence` of each data set (n·μ ≤ 1/c is
            the theorem's near-orthogonality).
    """

    n: int
    d: int
    width: int
    trained: FlipDistances
    robust_radius: np.ndarray
    accuracy: np.ndarray
    margin: np.ndarray
    coherence: np.ndarray

    def summary(self) -> dict[str, float]:
        ok = self.accuracy >= 1.0
        rel_u = self.trained.relative("universal")[ok]
        rel_g = self.trained.relative("gradient")[ok]
        pred = self.trained.predicted
        return {"n": self.n, "d": self.d, "fitted": float(np.mean(ok)),
                "median_sqrt_n_universal": float(np.median(rel_u)) if rel_u.size else math.nan,
                "median_sqrt_n_gradient": float(np.median(rel_g)) if rel_g.size else math.nan,
                "flipped_universal": float(np.mean(np.isfinite(rel_u))) if rel_u.size else 0.0,
                "robust_radius_over_pred": float(np.median(self.robust_radius / pred)),
                "robust_radius_over_trained": float(
                    np.median(self.robust_radius[ok]) / np.median(self.trained.universal[ok]))
                if ok.any() else math.nan,
                "n_coherence_median": float(np.median(self.n * self.coherence))}


@partial(jax.jit, static_argnames=("width", "steps", "bias", "loss", "method", "init_scale"))
def _sweep_kernel(keys: jax.Array, X: jax.Array, y: jax.Array, lr_first: jax.Array,
                  lr_last: jax.Array, width: int, steps: int, bias: bool, loss: str, method: str,
                  init_scale: float):
    """Train and measure N data sets ``X (N, n_max, d)``, ``y (N, n_max)`` in one compiled call.

    Rows with y = 0 are padding (ignored by :func:`train_kernel`, no direction for the rays),
    so that every n of a sweep shares one compilation.
    """
    d = X.shape[-1]

    def one(k, X, y):
        p0 = init_two_layer(k, d, width, bias=bias, init_scale=init_scale)
        phi, rec = train_kernel(p0, X, y, lr_first, lr_last, steps, loss, method)
        tu, tg = _flip_one(phi, X, y, 2.0 * jnp.sqrt(jnp.max(jnp.sum(X * X, axis=-1))))
        return tu, tg, rec[3][-1], rec[1][-1], _certified_radius(X, y)

    return jax.vmap(one)(keys, X, y)


def sweep_n(key: jax.Array, d: int, ns: Sequence[int], *, n_datasets: int, width: int,
            steps: int, bias: bool = False, loss: str = "logistic", method: str = "ngd",
            lr: float | tuple[float, float] | None = None, init_scale: float = 1e-2
            ) -> list[SweepPoint]:
    """Train on ``n_datasets`` independent nearly orthogonal data sets for each n, and measure.

    For each n: ``n_datasets`` data sets from :func:`~mini_adv.data.nearly_orthogonal` (n
    points on the sphere of radius √d, balanced random labels), one network per data set
    trained as in :func:`train` (vmapped :func:`train_kernel`), then the flip distances along
    −y_i û and along the gradient (the vmapped kernel of
    :func:`~mini_adv.attacks.ray_flip_distance`, budget 2‖x‖) and the certified radii of
    :func:`robust_network`. Every n is padded to max(ns) points (padding rows have label 0
    and are ignored), so the whole sweep compiles once. Statistics pool the N·n points.

    Raises:
        ValueError: for an empty ``ns`` or non-positive sizes, or an unknown loss or method.
    """
    d, width, steps = _check_size("d", d), _check_size("width", width), _check_size("steps", steps)
    n_datasets = _check_size("n_datasets", n_datasets)
    ns = [_check_size("n", n) for n in ns]
    if not ns:
        raise ValueError("ns is empty; pass at least one number of points n")
    if loss not in LOSSES or method not in METHODS:
        raise ValueError(f"loss must be one of {LOSSES} and method one of {METHODS}; "
                         f"got {loss!r}, {method!r}")
    lr_first, lr_last = _resolve_lr(lr, method)
    init_scale = _check_positive("init_scale", init_scale)
    n_max = max(ns)
    out = []
    for n in progress(ns, desc="n"):
        k_data, k_init = jax.random.split(jax.random.fold_in(key, n))
        data = [nearly_orthogonal(k, n, d) for k in jax.random.split(k_data, n_datasets)]
        X = jnp.stack([jnp.pad(x, ((0, n_max - n), (0, 0))) for x, _ in data])
        y = jnp.stack([jnp.pad(t, (0, n_max - n)) for _, t in data])
        tu, tg, acc, gam, rad = _sweep_kernel(
            jax.random.split(k_init, n_datasets), X, y, jnp.asarray(lr_first, X.dtype),
            jnp.asarray(lr_last, X.dtype), width, steps, bool(bias), loss, method, init_scale)
        Xn = np.asarray(X[:, :n])
        out.append(SweepPoint(
            n=n, d=d, width=width,
            trained=FlipDistances(np.asarray(tu)[:, :n], np.asarray(tg)[:, :n],
                                  np.linalg.norm(Xn, axis=-1)),
            robust_radius=np.asarray(rad)[:, :n], accuracy=np.asarray(acc), margin=np.asarray(gam),
            coherence=np.array([coherence(x) for x in Xn]) if n > 1 else np.zeros(n_datasets)))
    return out


def scaling_fit(sweep: Sequence[SweepPoint], which: str = "universal") -> dict[str, float]:
    """Fit median(dist/‖x‖) ≈ C·n^slope over a :func:`sweep_n` result (prediction: slope −1/2).

    Uses :func:`mini_adv.rmt.fit_power_law` on the per-n medians over fitted data sets.
    """
    ns = [p.n for p in sweep]
    med = []
    for p in sweep:
        ok = p.accuracy >= 1.0
        med.append(float(np.median((getattr(p.trained, which) / p.trained.norms)[ok])))
    slope, C = fit_power_law(ns, med)
    return {"slope": slope, "C": C}


def plot_flip_scaling(ax: Any, sweep: Sequence[SweepPoint]) -> dict[str, float]:
    """Log-log plot of dist/‖x‖ against n: trained network along û and along ∇N (medians and
    quartiles), the robust network's certified radius, the fit and the prediction 1/√n
    (dashed). Returns the fit along û."""
    from mini_adv.figures.style import PALETTE, power_law_axes

    ns = np.array([p.n for p in sweep], float)

    def stats(get):
        vals = [get(p) for p in sweep]
        return (np.array([np.median(v) for v in vals]),
                np.array([np.quantile(v, 0.25) for v in vals]),
                np.array([np.quantile(v, 0.75) for v in vals]))

    def fitted(p, arr):
        return arr[p.accuracy >= 1.0]

    series = [
        ("trained net, along $-y_i\\hat u$", PALETTE["gradient"], "o",
         lambda p: fitted(p, p.trained.universal / p.trained.norms)),
        ("trained net, along the gradient", PALETTE["accent"], "s",
         lambda p: fitted(p, p.trained.gradient / p.trained.norms)),
        ("robust net, certified radius", PALETTE["random"], "^",
         lambda p: p.robust_radius / p.trained.norms),
    ]
    for label, color, marker, get in series:
        med, lo, hi = stats(get)
        ax.errorbar(ns, med, yerr=[med - lo, hi - med], fmt=marker, color=color, capsize=3,
                    label=label + " (median, quartiles)")
    fit = scaling_fit(sweep)
    grid = np.geomspace(ns.min() / 1.3, ns.max() * 1.3, 50)
    ax.plot(grid, 1 / np.sqrt(grid), "--", color=PALETTE["theory"],
            label=r"prediction $1/\sqrt{n}$ (symmetric KKT net)")
    ax.plot(grid, np.full_like(grid, 0.5), ":", color=PALETTE["theory"],
            label=r"$1/2$ (robust net, orthogonal data)")
    ax.set(xlabel="number of training points $n$", ylabel=r"flip distance $/\ \|x\|$")
    power_law_axes(ax, ns, fit,
                   fit_label=fr"fit along $\hat u$: ${fit['C']:.2f}\,n^{{{fit['slope']:.3f}}}$",
                   y_ticks=[0.02, 0.05, 0.1, 0.2, 0.5, 1.0])
    return fit


def draw_flip_frame(fig: Any, point: SweepPoint) -> None:
    """One frame of the chapter's slider: the flip distances of one :func:`sweep_n` entry.

    Left: per training point (sorted), the trained network's flip distance along −y_i û and
    along the gradient and the robust network's certified radius, in units of ‖x‖, with
    the prediction 1/√n (dashed) and 1/2 (dotted). Right: histograms of √n·distance/‖x‖,
    whose prediction (1 along û) does not depend on n.
    """
    from mini_adv.figures.style import PALETTE

    ok = point.accuracy >= 1.0
    t = point.trained
    rel = lambda a: np.sort((a / t.norms)[ok].ravel())  # noqa: E731
    curves = [(rel(t.universal), PALETTE["gradient"], r"trained, along $-y_i\hat u$"),
              (rel(t.gradient), PALETTE["accent"], "trained, along the gradient"),
              (np.sort((point.robust_radius / t.norms).ravel()), PALETTE["random"],
               "robust net, certified radius")]
    ax1, ax2 = fig.subplots(1, 2)
    for vals, color, label in curves:
        ax1.plot(np.linspace(0, 1, vals.size), vals, "-", color=color, lw=2, label=label)
    ax1.axhline(1 / math.sqrt(point.n), ls="--", color=PALETTE["theory"],
                label=r"prediction $1/\sqrt{n}$")
    ax1.axhline(0.5, ls=":", color=PALETTE["theory"], label=r"$1/2$")
    ax1.set(ylim=(0, 0.8), xlabel="training points, sorted (fraction)",
            ylabel=r"distance $/\ \|x\|$", title=f"n = {point.n}, d = {point.d}")
    root_n = math.sqrt(point.n)
    bins = np.linspace(0.0, 3.0, 31)
    for vals, color, label in curves[:2]:
        ax2.hist(np.clip(root_n * vals, 0, 3), bins=bins, color=color, alpha=0.6, label=label)
    ax2.axvline(1.0, ls="--", color=PALETTE["theory"])
    ax2.set(xlabel=r"$\sqrt{n}\,\cdot$ distance $/\ \|x\|$", ylabel="training points",
            title=r"scaled by $\sqrt{n}$ (prediction 1, dashed)")
    handles, labels = ax1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False, fontsize=9)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.92, bottom=0.25, wspace=0.22)


def draw_profiles(ax: Any, net: Network, X: Any, y: Any, key: jax.Array, *,
                  t_max: float = 3.0, points: int = 121) -> dict[str, float]:
    """N along straight lines from every training point, in units of the prediction ‖x‖/√n.

    Draws y_i N(x_i + t u_i)/y_i N(x_i) against t/(‖x_i‖/√n) for u_i = −y_i û (one line per
    point), for u_i = −sign(N(x_i)) ∇N(x_i)/‖∇N(x_i)‖ and for a random unit direction u_i,
    with the prediction t = ‖x‖/√n dashed. A value below 0 means the sign has flipped.

    Returns:
        The fraction of points flipped within ``t_max`` units along each kind of direction,
        keyed ``"universal"``, ``"gradient"``, ``"random"``.
    """
    from mini_adv.figures.style import PALETTE

    params, X, y = _params_and_data(net, X, y)
    n, d = X.shape
    unit = jnp.linalg.norm(X, axis=-1) / math.sqrt(n)
    u = universal_direction(X, y)
    R = jax.random.normal(key, X.shape)
    dirs = {"universal": (-y[:, None] * u[None, :], PALETTE["gradient"], r"along $-y_i\hat u$"),
            "gradient": (flip_direction(params, X), PALETTE["accent"], "along the gradient"),
            "random": (R / jnp.linalg.norm(R, axis=-1, keepdims=True), PALETTE["random"],
                       "random direction")}
    ts = jnp.linspace(0.0, t_max, points)
    f0 = y * apply(params, X)
    out = {}
    for name, (U, color, label) in dirs.items():
        pts = X[None] + (ts[:, None, None] * unit[None, :, None]) * U[None]
        vals = np.asarray(y[None] * apply(params, pts.reshape(-1, d)).reshape(points, n) / f0[None])
        ax.plot(np.asarray(ts), vals, "-", color=color, lw=1, alpha=0.6)
        ax.plot([], [], "-", color=color, lw=2, label=label)
        out[name] = float(np.mean(np.any(vals < 0, axis=0)))
    ax.axhline(0.0, color="black", lw=0.8)
    ax.axvline(1.0, ls="--", color=PALETTE["theory"], label=r"prediction $t = \|x\|/\sqrt{n}$")
    ax.set(xlabel=r"distance $t$ moved from $x_i$ (units of $\|x\|/\sqrt{n}$)",
           ylabel=r"$y_i N(x_i + t u_i)\ /\ y_i N(x_i)$")
    ax.legend(loc="lower left", fontsize=9)
    return out


def plot_margin_growth(ax: Any, histories: Mapping[str, TrainHistory]) -> None:
    """The normalised margin γ̄(θ_t) against the step t (log axis) for each labelled history,
    from the first step at which every point is fitted."""
    from mini_adv.figures.style import CYCLE

    for (label, h), color in zip(histories.items(), CYCLE):
        t0 = h.fitted_at
        if t0 is None:
            continue
        t = h.steps[max(t0, 1):]
        ax.plot(t, h.normalized_margin[t], "-", color=color, lw=2, label=label)
    ax.set(xscale="log", xlabel="step $t$",
           ylabel=r"normalised margin $\min_i y_i N(x_i)/\|\theta\|^2$")
    ax.legend(loc="lower right")


@dataclasses.dataclass(frozen=True)
class ClusterResult:
    """The cluster setting of :func:`cluster_experiment`.

    Attributes:
        k, d, noise: sizes. train_accuracy, test_accuracy: fractions.
        test: :class:`FlipDistances` on the correctly classified test points (û from the
            training data, attacked along −y û, and along the gradient).
        mean_norm: ‖μ‖ (all means have the same norm). coherence: of the means.
        history: the training history.
    """

    k: int
    d: int
    noise: float
    train_accuracy: float
    test_accuracy: float
    test: FlipDistances
    mean_norm: float
    coherence: float
    history: TrainHistory

    @property
    def predicted(self) -> float:
        """‖μ‖/√k, the flip size predicted for the clustered setting (up to constants)."""
        return self.mean_norm / math.sqrt(self.k)

    def summary(self) -> dict[str, float]:
        return {"k": self.k, "train_accuracy": self.train_accuracy,
                "test_accuracy": self.test_accuracy,
                "median_universal_over_pred": float(np.median(self.test.universal) / self.predicted),
                "median_gradient_over_pred": float(np.median(self.test.gradient) / self.predicted),
                "median_universal_over_norm": float(np.median(self.test.universal / self.test.norms)),
                "flipped": float(np.mean(np.isfinite(self.test.universal)))}


def cluster_experiment(key: jax.Array, *, d: int, k: int, n_train: int, n_test: int,
                       noise: float, width: int, steps: int, **train_kwargs: Any) -> ClusterResult:
    """Frei, Vardi, Bartlett & Srebro (2023): accurate on fresh data and non-robust at once.

    ``k`` nearly orthogonal cluster means on the sphere of radius √d with balanced labels
    (:func:`~mini_adv.data.cluster_means`), ``n_train`` training and ``n_test`` test points
    with relative noise ``noise`` (:func:`~mini_adv.data.clusters`); train with
    :func:`train` (``train_kwargs``), then measure the test accuracy and, on the correctly
    classified test points x, the first flip along −y û (û from the *training* data) and
    along the gradient. Prediction: flips at distance of order ‖μ‖/√k, far below the
    distance ‖μ‖·√2 between cluster means.

    Raises:
        ValueError: for non-positive sizes or a bad noise level.
    """
    k_means, k_tr, k_te, k_net = jax.random.split(key, 4)
    means, labels = cluster_means(k_means, k, d)
    X, y, _ = clusters(k_tr, means, labels, n_train, noise=noise)
    Xt, yt, _ = clusters(k_te, means, labels, n_test, noise=noise)
    net, hist = train(X, y, width=width, steps=steps, key=k_net, **train_kwargs)
    params = net.params()
    correct = np.asarray(yt * apply(params, Xt) > 0)
    u = universal_direction(X, y)
    Xc, yc = Xt[correct], yt[correct]
    budget = 2.0 * float(jnp.max(jnp.linalg.norm(Xt, axis=-1)))
    r_u = ray_flip_distance(params, Xc, -yc[:, None] * u[None, :], max_distance=budget)
    r_g = ray_flip_distance(params, Xc, flip_direction(params, Xc), max_distance=budget)
    return ClusterResult(
        k=k, d=d, noise=float(noise), train_accuracy=float(hist.accuracy[-1]),
        test_accuracy=float(np.mean(correct)),
        test=FlipDistances(np.asarray(r_u.distance), np.asarray(r_g.distance),
                           np.asarray(jnp.linalg.norm(Xc, axis=-1))),
        mean_norm=float(jnp.linalg.norm(means[0])), coherence=coherence(means), history=hist)

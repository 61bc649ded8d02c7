"""Training the depth-2 network: gradient descent and normalised GD in log space.

:func:`train` (checks, then one jitted ``lax.scan``: :func:`train_kernel`) and its record
:class:`TrainHistory`; :func:`log_loss_terms` and :func:`normalized_gradient` are the
log-space pieces of the normalised step (Lyu & Li 2020; chapter 5's algorithm).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mini_adv.margin.network import TwoLayerNet, _check_data, _sqnorm, init_two_layer
from mini_adv.nets import MLPParams, apply
from mini_adv.runtime import float64 as _float64_context
from mini_adv.validation import check_key, check_number, check_size

LOSSES = ("logistic", "exponential")
"""Exponential-tailed losses ℓ(u) of the margin u = y N(x): log(1 + e^{−u}) and e^{−u}."""

METHODS = ("gd", "ngd")
"""Plain gradient descent and normalised gradient descent (step ∝ ∇L/L)."""

DEFAULT_LR: dict[str, tuple[float, float]] = {"gd": (0.1, 0.1), "ngd": (0.1, 0.001)}
"""Default (first, last) step of :func:`train` (see ``lr`` there): GD constant, NGD decaying."""


def _check_method(loss: str, method: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; use one of {LOSSES}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")


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
                 lr_last: jax.Array, steps: int, loss: str = "logistic", method: str = "ngd",
                 log_scale: jax.Array | float = 0.0) -> tuple[MLPParams, tuple[jax.Array, ...]]:
    """Pure kernel of :func:`train` (no checks; vmap it over data sets and initialisations).

    Carries θ = e^s φ with ‖φ‖ = 1 (an exact reparametrisation that keeps every array in
    range however large ‖θ‖ grows). Rows with y_i = 0 are padding: they contribute nothing
    (their margin y_i N(x_i) is identically 0) and are left out of L, the minimum and the
    accuracy. Returns the final φ and per-step records
    ``(log L, min_i u_i(φ), s, training accuracy)``, each of shape ``(steps + 1,)``: entry t
    is the state after t steps. The network trained is θ = e^{log_scale}·params: passing a
    returned φ with ``log_scale`` = its last recorded s continues a run exactly (in float
    arithmetic, without ever forming e^s).
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
    init = (jax.tree.map(lambda a: a / norm0, params), jnp.log(norm0) + log_scale)
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
        return (float(check_number("lr (first)", lr[0], low=0.0)),
                float(check_number("lr (last)", lr[1], low=0.0)))
    v = float(check_number("lr", lr, low=0.0))
    return v, v


def train(key: jax.Array, X: Any, y: Any, *, width: int, steps: int, bias: bool = False,
          loss: str = "logistic", method: str = "ngd",
          lr: float | tuple[float, float] | None = None, init_scale: float = 1e-2,
          float64: bool = False) -> tuple[TwoLayerNet, TrainHistory]:
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
        key: PRNG key of the initialisation (``jax.random.key(seed)``).
        X: ``(n, d)`` training inputs (real floating). y: ``(n,)`` labels in {±1}.
        width: number of hidden units m ≥ 1. steps: number of steps ≥ 1.
        bias: train hidden biases b_j.
        loss: ``"logistic"`` or ``"exponential"``. method: ``"gd"`` or ``"ngd"``.
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
        ValueError: for a key that is not a PRNG key (e.g. an int seed), mismatched shapes,
            non-floating X, NaN/inf, labels other than ±1, an unknown loss or method, or a
            non-positive width, steps, lr or init_scale.
    """
    key = check_key(key)
    X, y = _check_data(X, y)
    width, steps = check_size("width", width), check_size("steps", steps)
    _check_method(loss, method)
    lr_first, lr_last = _resolve_lr(lr, method)
    p0 = init_two_layer(key, X.shape[1], width, bias=bool(bias), init_scale=init_scale)
    dtype = X.dtype
    # one call: in float64 (x64 on for this call only) or in X's dtype
    context, work = (_float64_context(), jnp.float64) if float64 else (contextlib.nullcontext(), dtype)
    with context:
        cast = lambda a: jnp.asarray(a, work)  # noqa: E731
        phi, rec = train_kernel(jax.tree.map(cast, p0), cast(X), cast(y), cast(lr_first),
                                cast(lr_last), steps, loss, method)
        phi = jax.tree.map(np.asarray, phi)
        rec = [np.asarray(r, np.float64) for r in rec]
    phi = jax.tree.map(lambda a: jnp.asarray(a, dtype), phi)
    history = TrainHistory(method=method, loss=loss, log_loss=rec[0], normalized_margin=rec[1],
                           log_norm=rec[2], accuracy=rec[3])
    return TwoLayerNet.from_params(phi), history

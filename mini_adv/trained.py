"""Chapter 6: bias-free ReLU MLPs trained on real digits, plain and adversarial.

:func:`train` fits the package's network form (an :class:`~mini_adv.nets.MLPParams` with
``biases=None`` and σ = ReLU, the form of :func:`~mini_adv.nets.init_params`) to a labelled
data set (X, y ∈ {±1}) by full-batch logistic regression,

    L(θ) = (1/n) Σ_i log(1 + exp(−y_i f_θ(x_i))) + (λ/2) ‖θ‖²,

with an optax optimiser (Adam or plain gradient descent), optionally on the points of an ℓ2
PGD attack computed at the current parameters (adversarial training, Madry, Makelov,
Schmidt, Tsipras & Vladu 2018). The result is a bias-free ReLU network again, so Euler's
identity f(x) = ⟨∇f(x), x⟩ holds and every attack of :mod:`mini_adv.attacks` applies to it.
:func:`accuracy` is the fraction of a data set it classifies correctly (y·f(x) > 0).

**Adversarial training.** Madry et al.'s min–max problem min_θ mean_i max_{‖δ_i‖≤ε}
ℓ(y_i f_θ(x_i + δ_i)) is approximated at every step by the ℓ2 PGD points x̃_i of
:func:`~mini_adv.attacks.pgd_l2_kernel` at the current θ, and by Danskin's theorem the
gradient of the inner maximum is the gradient of the loss at x̃ (the attack is under
``jax.lax.stop_gradient``). The package's PGD ascends −sign(f(x_i))·f: that is the loss
ascent −y_i f for every point the network classifies correctly (all of them once the
training set is fitted), but it would move a misclassified point towards the correct side
and *lower* its loss; there x̃_i = x_i (where y_i f_θ(x_i) ≤ 0 at the current θ), so a
misclassified point keeps its clean loss.

All steps run in one jitted ``lax.scan`` (:func:`train_kernel`); the same key and
settings give bit-identical parameters.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mini_adv.attacks.pgd import pgd_l2_kernel
from mini_adv.margin.network import _check_data, _check_labels  # the package's one label rule
from mini_adv.nets import MLPParams, Network, apply, init_params
from mini_adv.validation import (check_batch, check_key, check_number, check_params, check_size,
                                 check_widths)

OPTIMIZERS = ("adam", "sgd")
"""The optax optimisers :func:`train` accepts: ``optax.adam(lr)`` and ``optax.sgd(lr)``."""

ADVERSARIAL_KEYS = ("eps", "steps", "step_size")
"""The keys of :func:`train`'s ``adversarial`` dict (``step_size`` optional)."""


@dataclasses.dataclass(frozen=True)
class TrainHistory:
    """What :func:`train` recorded: NumPy float64 arrays of shape ``(steps + 1,)``.

    Entry t is measured at θ_t, the parameters after t optimiser steps (entry 0 at the
    initialisation, entry ``steps`` at the returned network).

    Attributes:
        optimizer: ``"adam"`` or ``"sgd"``.
        adversarial: the resolved attack settings ``{"eps", "steps", "step_size"}``, or
            ``None`` for plain training.
        loss: the objective being minimised, L(θ_t) on the PGD points x_adv(θ_t) when
            adversarial (on X otherwise), weight-decay term included.
        clean_loss: the same objective on the clean X (equal to ``loss`` for plain training).
        train_accuracy: the fraction of the clean X with y_i f_{θ_t}(x_i) > 0.
    """

    optimizer: str
    adversarial: dict[str, float] | None
    loss: np.ndarray
    clean_loss: np.ndarray
    train_accuracy: np.ndarray

    @property
    def steps(self) -> np.ndarray:
        """``0, 1, …, steps``."""
        return np.arange(self.loss.shape[-1])


def _check_adversarial(adversarial: Any) -> dict[str, float] | None:
    """The resolved ``{"eps", "steps", "step_size"}`` (step 2.5·eps/steps by default), or None."""
    if adversarial is None:
        return None
    if not isinstance(adversarial, dict):
        raise ValueError(f"adversarial must be None or a dict(eps=..., steps=...); got "
                         f"{type(adversarial).__name__} {adversarial!r}")
    unknown = sorted(set(adversarial) - set(ADVERSARIAL_KEYS), key=str)
    if unknown or "eps" not in adversarial or "steps" not in adversarial:
        raise ValueError(f"adversarial must be dict(eps=..., steps=...) with optional step_size; "
                         f"got keys {sorted(map(str, adversarial))}")
    eps = float(check_number("adversarial eps", adversarial["eps"], low=0.0))
    steps = check_size("adversarial steps", adversarial["steps"])
    step = adversarial.get("step_size")
    step = float(check_number("adversarial step_size", 2.5 * eps / steps if step is None
                              else step, low=0.0))
    return {"eps": eps, "steps": steps, "step_size": step}


def _check_settings(steps: Any, lr: Any, weight_decay: Any, optimizer: Any, adversarial: Any
                    ) -> tuple[int, float, float, dict[str, float] | None]:
    """``(steps, lr, weight_decay, adversarial)`` of :func:`train`, checked and resolved."""
    steps = check_size("steps", steps)
    lr = float(check_number("lr", lr, low=0.0))
    wd = float(check_number("weight_decay", weight_decay, low=0.0, strict_low=False))
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; use one of {OPTIMIZERS}")
    return steps, lr, wd, _check_adversarial(adversarial)


def _objective(params: MLPParams, X: jax.Array, y: jax.Array, weight_decay: jax.Array
               ) -> jax.Array:
    """mean_i softplus(−y_i f(x_i)) + (λ/2)‖θ‖² (softplus(−u) = log(1 + e^{−u}), stably)."""
    sq = sum(jnp.sum(a * a) for a in jax.tree.leaves(params))
    return jnp.mean(jax.nn.softplus(-y * apply(params, X))) + 0.5 * weight_decay * sq


@partial(jax.jit, static_argnames=("steps", "optimizer", "adv_steps"))
def train_kernel(params: MLPParams, X: jax.Array, y: jax.Array, lr: jax.Array,
                 weight_decay: jax.Array, eps: jax.Array, step_size: jax.Array, steps: int,
                 optimizer: str = "adam", adv_steps: int = 0
                 ) -> tuple[MLPParams, tuple[jax.Array, jax.Array, jax.Array]]:
    """Pure kernel of :func:`train` (no checks; vmap it over initialisations).

    ``adv_steps = 0`` trains on X; ``adv_steps = k ≥ 1`` trains on the points of
    ``pgd_l2_kernel(θ_t, X, eps, k, step_size)`` recomputed at every step (``eps`` and
    ``step_size`` are then used, otherwise ignored). X and y ``(n,)`` in the weights' dtype.

    Returns:
        ``(θ_steps, (loss, clean_loss, correct))``, each record of shape ``(steps + 1,)``
        (entry t at θ_t): the two losses of :class:`TrainHistory` and the number of training
        points with y_i f(x_i) > 0 (an integer; divided by n on the host, so 1.0 is exact).
    """
    tx = optax.adam(lr) if optimizer == "adam" else optax.sgd(lr)

    def points(p: MLPParams) -> jax.Array:
        if adv_steps == 0:
            return X
        # Danskin: the gradient is taken at the attack's points, not through the attack
        x_adv = pgd_l2_kernel(p, X, eps, adv_steps, step_size).x_adv
        # PGD heads for the boundary, which is the loss ascent only where y f(x) > 0
        fitted = y * apply(p, X) > 0
        return jax.lax.stop_gradient(jnp.where(fitted[:, None], x_adv, X))

    def evaluate(p: MLPParams):
        Xa = points(p)
        loss, grad = jax.value_and_grad(_objective)(p, Xa, y, weight_decay)
        clean = loss if adv_steps == 0 else _objective(p, X, y, weight_decay)
        return grad, (loss, clean, jnp.sum(y * apply(p, X) > 0))

    def step(carry, _):
        p, state = carry
        grad, record = evaluate(p)
        updates, state = tx.update(grad, state, p)
        return (optax.apply_updates(p, updates), state), record

    (p, _), records = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    final = evaluate(p)[1]
    records = tuple(jnp.concatenate([r, f[None].astype(r.dtype)]) for r, f in zip(records, final))
    return p, records


def init_scaled(key: jax.Array, widths: Sequence[int], init_scale: float = 1.0) -> MLPParams:
    """The initialisation of :func:`train`: ``nets.init_params(key, widths)`` times ``init_scale``.

    He kernels (K_ℓ)_{ij} ~ N(0, 2 s²/h_{ℓ−1}) and a Gaussian readout a_j ~ N(0, s²/h_L),
    s = ``init_scale``, no biases, σ = ReLU; ``weight_scale=None`` (the weights are to be
    trained). A small s is the "small initialisation" of Melamed, Yehudai & Vardi (2023):
    f scales as s^{L+1}. Checks its arguments as :func:`train` does.
    """
    key = check_key(key)
    widths = check_widths(widths)
    s = float(check_number("init_scale", init_scale, low=0.0))
    p = init_params(key, widths)
    return jax.tree.map(lambda a: a * s, p).replace(weight_scale=None)


def train(key: jax.Array, X: Any, y: Any, widths: Sequence[int], *, steps: int, lr: float,
          init_scale: float = 1.0, weight_decay: float = 0.0,
          adversarial: dict[str, float] | None = None, optimizer: str = "adam"
          ) -> tuple[MLPParams, TrainHistory]:
    """Train a bias-free ReLU MLP f(x) = aᵀ σ(⋯ σ(x K_1) ⋯ K_L) on (X, y) by full-batch descent.

        L(θ) = (1/n) Σ_i log(1 + exp(−y_i f_θ(x̃_i))) + (λ/2) ‖θ‖²,     θ ← optax step on ∇L(θ),

    with λ = ``weight_decay`` (an explicit ℓ2 penalty on every weight) and x̃_i = x_i for
    plain training. With ``adversarial=dict(eps=ε, steps=k)``, the adversarial training of
    Madry, Makelov, Schmidt, Tsipras & Vladu (2018): x̃_i is the ℓ2 PGD point of
    :func:`~mini_adv.attacks.pgd_l2_kernel` (k steps of η = 2.5 ε/k by default, within
    ‖x̃_i − x_i‖ ≤ ε) at the current θ, and the gradient is taken at x̃ (Danskin; the module
    docstring says how misclassified points are treated).
    Initialisation (:func:`init_scaled`): ``nets.init_params(key, widths)`` (He kernels,
    Gaussian readout), every weight times ``init_scale``. Optimiser ``optax.adam(lr)`` or
    ``optax.sgd(lr)``; one jitted ``lax.scan`` (:func:`train_kernel`), bit-reproducible.

    Args:
        key: PRNG key of the initialisation (``jax.random.key(seed)``).
        X: ``(n, d)`` real floating, finite inputs (cast to the weights' dtype, float32 by
            default). y: ``(n,)`` labels in {±1}.
        widths: ``[d, h_1, ..., h_L]`` as in :func:`~mini_adv.nets.init_params`, d = X.shape[1].
        steps: optimiser steps ≥ 1. lr: learning rate > 0.
        init_scale: s > 0, the factor on every initial weight. weight_decay: λ ≥ 0.
        adversarial: ``None`` or ``dict(eps=ε > 0, steps=k ≥ 1[, step_size=η > 0])``.
        optimizer: ``"adam"`` or ``"sgd"``.

    Returns:
        ``(params, history)``: the trained network (``MLPParams``, ``biases=None``,
        ``activation="relu"``, ``weight_scale=None``, kernels ``(h_{ℓ−1}, h_ℓ)``, readout
        ``(h_L,)``) and its :class:`TrainHistory`.

    Raises:
        ValueError: for a key that is not a PRNG key; X not 2-D, floating and finite; y not
            (n,) or not ±1; widths[0] ≠ d; non-positive widths, steps, lr or init_scale; a
            negative weight_decay; an unknown optimizer; a bad adversarial dict; and, after
            training, NaN/inf weights or loss ("training diverged: lower lr").
    """
    key = check_key(key)
    X, y = _check_data(X, y)
    widths = check_widths(widths)
    if widths[0] != X.shape[1]:
        raise ValueError(f"widths[0] must equal the input dimension d = X.shape[1] = "
                         f"{X.shape[1]}; got widths = {list(widths)}")
    steps, lr, wd, adv = _check_settings(steps, lr, weight_decay, optimizer, adversarial)
    p0 = init_scaled(key, widths, init_scale)
    dtype = p0.kernels[0].dtype
    cast = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    eps, eta, k = (adv["eps"], adv["step_size"], adv["steps"]) if adv else (0.0, 0.0, 0)
    params, rec = train_kernel(p0, X.astype(dtype), y.astype(dtype), cast(lr), cast(wd),
                               cast(eps), cast(eta), steps, optimizer, k)
    rec = [np.asarray(r, np.float64) for r in rec]
    leaves = [np.asarray(a) for a in jax.tree.leaves(params)]
    if not (all(np.isfinite(a).all() for a in leaves) and np.isfinite(rec[0][-1])):
        raise ValueError(f"training diverged: the weights or the loss became NaN or inf; "
                         f"lower lr (got lr = {lr:g} with {optimizer})")
    rec[2] = rec[2] / X.shape[0]
    return params, TrainHistory(optimizer=optimizer, adversarial=adv, loss=rec[0],
                                clean_loss=rec[1], train_accuracy=rec[2])


def accuracy(net: Network, X: Any, y: Any) -> float:
    """The fraction of (X, y) that ``net`` classifies correctly: (1/n) #{i : y_i f(x_i) > 0}.

    Args:
        net: one network (``MLPParams`` or a module with ``params()``).
        X: ``(n, d)`` real floating, finite inputs (cast to the weights' dtype).
        y: ``(n,)`` labels in {±1}.

    Returns:
        A Python float in [0, 1] (a point with f(x) = 0 counts as wrong).

    Raises:
        ValueError: as :func:`~mini_adv.nets.apply` and :func:`train` for bad X or y, a
            stack of networks, or weights with NaN/inf.
    """
    params = check_params(net)
    X = check_batch(params, X)
    y = _check_labels(y, X.shape[0], X.dtype)
    return float(np.mean(np.asarray(y * apply(params, X)) > 0))

"""Chapter 6: trained networks on real digits — what carries over, what does not, what defends.

The data are scikit-learn's bundled 8 × 8 digits (:func:`mini_adv.data.digits`, d = 64, rows
of norm √d); the networks are bias-free ReLU MLPs trained by :func:`mini_adv.trained.train`.
One function per measurement of the chapter:

* :func:`minimal_perturbation` — the smallest verified flip found by DeepFool and by the
  normalised gradient flow (the better of the two, per input);
* :func:`carry_over` — the random-network predictions of chapters 1–3 measured on one network
  (Euler's identity, linearised against minimal distance, |cos∠(x, ∇f)|√d, flip rates along
  the gradient and along random rays);
* :func:`class_mean_flips` — the class-mean direction û ∝ Σ y_i x_i of chapter 5 against the
  minimal perturbation;
* :func:`split_perturbation` and :func:`subspace_sweep` — digits embedded in ℝ^D
  (Melamed, Yehudai & Vardi 2023): the part of the minimal perturbation off the data subspace;
* :func:`defence_sweep` — adversarial training (Madry et al. 2018) at several radii;
* :func:`robust_start` — gradient descent started at chapter 5's robust network;
* :func:`cifar10_scale` — the book's unit ‖x‖/√d on CIFAR-10, against the ℓ2 budget 0.5.

The figures are in :mod:`mini_adv.figures.ch6`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mini_adv.attacks import deepfool, gradient_flow, ray_flip_distance
from mini_adv.data import embed, nearly_orthogonal
from mini_adv.gradients import value_and_input_grad
from mini_adv.margin import flip_distances, normalized_margin, robust_params, train_kernel, universal_direction
from mini_adv.margin.network import TwoLayerNet
from mini_adv.nets import Network, apply
from mini_adv.rays import RayComparison, compare_rays_on, linear_flip_probability, linear_ratio_median
from mini_adv.runtime import progress
from mini_adv.validation import check_batch, check_key, check_number, check_params, check_size

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
"""E|Z| for Z ~ N(0, 1)."""
MEDIAN_ABS_Z = 0.6744897501960817
"""The median of |Z|, Φ⁻¹(3/4)."""


@dataclasses.dataclass(frozen=True)
class MinimalPerturbation:
    """The smallest verified flip found per input (arrays with leading axis B).

    Attributes:
        delta: ``(B, d)`` x_adv − x (zero where nothing flipped).
        distance: ``(B,)`` ‖δ‖, ``inf`` where neither attack flipped the sign.
        method: ``(B,)`` ``"deepfool"``, ``"flow"`` or ``"none"``.
        deepfool, flow: ``(B,)`` each attack's own verified distance (``inf`` if it found none).
    """

    delta: np.ndarray
    distance: np.ndarray
    method: np.ndarray
    deepfool: np.ndarray
    flow: np.ndarray

    @property
    def flipped(self) -> np.ndarray:
        return np.isfinite(self.distance)


def minimal_perturbation(net: Network, X: Any) -> MinimalPerturbation:
    """The smaller of DeepFool's and the gradient flow's verified flips, per input.

    Both attacks return a point only where f, re-evaluated there, has the opposite sign
    (:class:`mini_adv.attacks.AttackResult`); this takes, for each input, the shorter of the
    two perturbations: an upper bound on the minimal ℓ2 distance to the decision boundary
    (no attack certifies minimality; on the chapter's networks the two agree closely).

    Args:
        net: one network. X: ``(B, d)`` inputs.

    Returns:
        :class:`MinimalPerturbation`.

    Raises:
        ValueError: as the attacks (bad network, shapes, dtypes, NaN/inf).
    """
    params = check_params(net)
    X = check_batch(params, X)
    r_df, r_fl = deepfool(params, X), gradient_flow(params, X)
    d_df, d_fl = np.asarray(r_df.distance), np.asarray(r_fl.distance)
    use_flow = d_fl < d_df
    x_adv = np.where(use_flow[:, None], np.asarray(r_fl.x_adv), np.asarray(r_df.x_adv))
    distance = np.minimum(d_df, d_fl)
    flipped = np.isfinite(distance)
    delta = np.where(flipped[:, None], x_adv - np.asarray(X), 0.0)
    method = np.where(~flipped, "none", np.where(use_flow, "flow", "deepfool"))
    return MinimalPerturbation(delta=delta, distance=distance, method=method,
                               deepfool=d_df, flow=d_fl)


@dataclasses.dataclass(frozen=True)
class CarryOver:
    """Chapters 1–3's random-network measurements on one network at the rows of X.

    Attributes:
        euler: ``(B,)`` |f(x) − ⟨∇f(x), x⟩| / (‖∇f(x)‖‖x‖), Euler's identity's relative residual.
        linear: ``(B,)`` |f(x)|/‖∇f(x)‖, the linearised distance.
        minimal: :class:`MinimalPerturbation` at the same inputs.
        rays: the :class:`~mini_adv.rays.RayComparison` (gradient and random rays within β‖x‖).
        x_norm: ``(B,)`` ‖x‖.
    """

    euler: np.ndarray
    linear: np.ndarray
    minimal: MinimalPerturbation
    rays: RayComparison
    x_norm: np.ndarray

    @property
    def d(self) -> int:
        return int(self.rays.d)

    def summary(self) -> dict[str, float]:
        """Measured values (keys as below) for :func:`predictions` to sit beside.

        ``euler_max``: the largest relative Euler residual; ``cos_sqrt_d``: mean of
        |cos∠(x, ∇f)|·√d; ``linear_over_minimal``: median of linearised/minimal distance;
        ``minimal_sqrt_d``: median of √d·‖δ‖/‖x‖; ``p_flip_gradient``, ``p_flip_random``:
        fractions of gradient and random rays that flip within β‖x‖; ``ratio_median``: median
        random/gradient flip distance among the random rays that flip.
        """
        s = self.rays.summary()
        ok = self.minimal.flipped & np.isfinite(self.linear)
        cos = np.abs(self.linear) / self.x_norm  # |cos∠(x, ∇f)| = |f|/(‖x‖‖∇f‖) by Euler
        return {
            "euler_max": float(np.max(self.euler)),
            "cos_sqrt_d": float(np.mean(cos) * math.sqrt(self.d)),
            "linear_over_minimal": float(np.median(self.linear[ok] / self.minimal.distance[ok]))
            if ok.any() else math.inf,
            "minimal_sqrt_d": float(np.median(self.minimal.distance / self.x_norm) * math.sqrt(self.d)),
            "p_flip_gradient": s["p_flip_gradient"],
            "p_flip_random": s["p_flip_random"],
            "ratio_median": s["ratio_median"],
        }


def predictions(d: int, kappa: float) -> dict[str, float]:
    """What chapters 1–3 predict for the keys of :meth:`CarryOver.summary` (random networks,
    inputs independent of the weights): Euler's residual 0 (float rounding), √(2/π) for the
    mean of |cos|√d and the median of |Z|, Φ⁻¹(3/4), for that of √d‖δ‖/‖x‖, linearised/minimal 1, every gradient ray flips, arctan(β)/π of
    the random rays flip, and their median distance ratio C(β)√d (the linear model's law)."""
    return {"euler_max": 0.0, "cos_sqrt_d": SQRT_2_OVER_PI, "linear_over_minimal": 1.0,
            "minimal_sqrt_d": MEDIAN_ABS_Z, "p_flip_gradient": 1.0,
            "p_flip_random": linear_flip_probability(kappa),
            "ratio_median": linear_ratio_median(kappa) * math.sqrt(d)}


def carry_over(key: jax.Array, net: Network, X: Any, *, n_rays: int = 8, kappa: float = 2.0
               ) -> CarryOver:
    """Measure on ``net`` at the rows of ``X`` what chapters 1–3 predict for random networks.

    For a bias-free ReLU network f(x) = ⟨∇f(x), x⟩ (Euler's identity for positively
    homogeneous f), hence |cos∠(x, ∇f(x))| = |f(x)|/(‖x‖‖∇f(x)‖): the cosine and the
    linearised distance are one measurement. For a random network and an independent input
    on the sphere of radius √d it is about |Z|/√d, Z ~ N(0, 1) (chapter 2), the linearised
    distance is close to the minimal one (chapter 3), every gradient ray flips and a random
    ray flips within β‖x‖ with probability about arctan(β)/π (chapter 1).

    Args:
        key: PRNG key of the random rays. net: one network. X: ``(B, d)`` inputs.
        n_rays: random rays per input. kappa: the ray budget β, in units of ‖x‖.

    Returns:
        :class:`CarryOver`; :func:`predictions` gives the random-network values beside it.

    Raises:
        ValueError: for a bad key, network, inputs, ``n_rays`` or ``kappa``.
    """
    key = check_key(key)
    params = check_params(net)
    X = check_batch(params, X)
    f, g = value_and_input_grad(params, X)
    f, g, Xn = np.asarray(f, np.float64), np.asarray(g, np.float64), np.asarray(X, np.float64)
    gn, xn = np.linalg.norm(g, axis=-1), np.linalg.norm(Xn, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        euler = np.abs(f - np.sum(g * Xn, axis=-1)) / (gn * xn)
        linear = np.where(gn > 0, np.abs(f) / gn, np.inf)
    rays = compare_rays_on(key, params, X, n_rays=n_rays, kappa=kappa)
    return CarryOver(euler=euler, linear=linear, minimal=minimal_perturbation(params, X),
                     rays=rays, x_norm=xn)


@dataclasses.dataclass(frozen=True)
class ClassMeanFlips:
    """Flips along the class-mean direction against the minimal perturbation (shapes ``(B,)``).

    Attributes:
        direction: ``(d,)`` û = Σ_i y_i x_i/‖Σ_i y_i x_i‖ over the training set.
        class_mean: first flip along −sign(f(x))·û (``inf`` if none within 2‖x‖).
        minimal: the minimal perturbation's distance (:func:`minimal_perturbation`).
        cos_to_minimal: |cos∠(û, δ_min)|, how far the minimal perturbation is from û.
    """

    direction: np.ndarray
    class_mean: np.ndarray
    minimal: np.ndarray
    cos_to_minimal: np.ndarray

    @property
    def ratio(self) -> np.ndarray:
        """class-mean distance / minimal distance, where both flipped."""
        ok = np.isfinite(self.class_mean) & np.isfinite(self.minimal)
        return self.class_mean[ok] / self.minimal[ok]


def class_mean_flips(net: Network, X_train: Any, y_train: Any, X: Any) -> ClassMeanFlips:
    """Chapter 5's universal direction û ∝ Σ_i y_i x_i, tried on a network trained on real data.

    On nearly orthogonal data every KKT point is flipped along −y û at distance O(‖x‖/√n)
    (chapter 5, our reconstruction of Vardi, Yehudai & Shamir 2022). Digits are far from
    orthogonal, so no theorem applies; this measures how far along −sign(f(x))·û the
    network's decision changes, against the minimal perturbation at the same x.

    Args:
        net: one network. X_train, y_train: the training set (labels ±1). X: ``(B, d)``
            inputs to attack.

    Returns:
        :class:`ClassMeanFlips`.

    Raises:
        ValueError: for mismatched shapes, labels other than ±1, Σ y_i x_i = 0, bad inputs.
    """
    params = check_params(net)
    u = universal_direction(X_train, y_train)
    X = check_batch(params, X)
    f = apply(params, X)
    U = -jnp.sign(f)[:, None] * u[None, :]
    r = ray_flip_distance(params, X, U, max_distance=float(2 * jnp.max(jnp.linalg.norm(X, axis=-1))))
    m = minimal_perturbation(params, X)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.abs(m.delta @ np.asarray(u, np.float64)) / m.distance
    return ClassMeanFlips(direction=np.asarray(u), class_mean=np.asarray(r.distance),
                          minimal=m.distance, cos_to_minimal=np.where(m.flipped, cos, np.nan))


def split_perturbation(delta: Any, projector: Any) -> tuple[np.ndarray, np.ndarray]:
    """‖δP‖ and ‖δ − δP‖ per row: the parts of each perturbation on and off the subspace.

    Args:
        delta: ``(B, D)`` perturbations. projector: ``(D, D)`` orthogonal projector P
            (symmetric, P² = P), e.g. from :func:`mini_adv.data.embed`.

    Returns:
        ``(on, off)``: two ``(B,)`` arrays with on² + off² = ‖δ‖².

    Raises:
        ValueError: for shapes that do not match.
    """
    delta, P = np.asarray(delta, np.float64), np.asarray(projector, np.float64)
    if delta.ndim != 2 or P.shape != (delta.shape[1], delta.shape[1]):
        raise ValueError(f"delta must be (B, D) and the projector (D, D); got {delta.shape} "
                         f"and {P.shape}")
    on = delta @ P
    return np.linalg.norm(on, axis=1), np.linalg.norm(delta - on, axis=1)


@dataclasses.dataclass(frozen=True)
class SubspacePoint:
    """One ambient dimension D of :func:`subspace_sweep` (arrays over the test digits).

    Attributes:
        D: ambient dimension. test_accuracy: on the embedded test digits.
        distance: ``(B,)`` ‖δ‖/‖x‖ of the minimal perturbation (``inf`` if none).
        off_share: ``(B,)`` ‖δ_⊥‖/‖δ‖, the share off the data subspace (NaN if no flip).
    """

    D: int
    test_accuracy: float
    distance: np.ndarray
    off_share: np.ndarray

    @property
    def median_off_share(self) -> float:
        ok = np.isfinite(self.off_share)
        return float(np.median(self.off_share[ok])) if ok.any() else math.nan

    @property
    def median_distance(self) -> float:
        return float(np.median(self.distance))


def subspace_sweep(key: jax.Array, data: tuple[Any, Any, Any, Any], Ds: Sequence[int], *,
                   width: int, steps: int, lr: float, init_scale: float = 1.0,
                   weight_decay: float = 0.0, optimizer: str = "sgd") -> list[SubspacePoint]:
    """Digits on a 64-dimensional subspace of ℝ^D, a two-layer net trained on them, per D.

    For each D: embed the training and test digits with the same random isometry
    (:func:`mini_adv.data.embed`, key fixed across D's draws by ``fold_in(key, D)``), train
    a bias-free two-layer ReLU net of ``width`` units (:func:`mini_adv.trained.train`, the
    same network key at every D), and split the minimal perturbation of every test digit
    into its parts on and off the subspace (:func:`split_perturbation`). Melamed, Yehudai &
    Vardi (2023) prove that gradient methods leave large gradients orthogonal to the data
    subspace; the sweep shows the share of δ off the subspace as D grows.

    Args:
        key: PRNG key. data: ``(X_train, y_train, X_test, y_test)`` in ℝ^d.
        Ds: ambient dimensions, each ≥ d. width, steps, lr, init_scale, weight_decay,
            optimizer: as :func:`mini_adv.trained.train`; the default is plain gradient descent
            ("sgd", full batch), under which the weights off the subspace move only by weight
            decay (chapter 6's lemma); Adam rescales coordinates and moves them too.

    Returns:
        One :class:`SubspacePoint` per D.

    Raises:
        ValueError: for a D below d, or bad training settings (from ``train``).
    """
    from mini_adv.trained import accuracy, train

    key = check_key(key)
    X_tr, y_tr, X_te, y_te = data
    k_embed, k_net = jax.random.split(key)
    out = []
    for D in progress(list(Ds), desc="ambient dimensions D"):
        D = check_size("D", D)
        k = jax.random.fold_in(k_embed, D)
        Z_tr, P = embed(X_tr, D, k)
        Z_te, _ = embed(X_te, D, k)
        net, _ = train(k_net, Z_tr, y_tr, [D, width], steps=steps, lr=lr,
                       init_scale=init_scale, weight_decay=weight_decay, optimizer=optimizer)
        m = minimal_perturbation(net, Z_te)
        on, off = split_perturbation(m.delta, P)
        with np.errstate(invalid="ignore"):
            share = np.where(m.flipped, off / m.distance, np.nan)
        out.append(SubspacePoint(D=D, test_accuracy=accuracy(net, Z_te, y_te),
                                 distance=m.distance / np.linalg.norm(np.asarray(Z_te), axis=1),
                                 off_share=share))
    return out


@dataclasses.dataclass(frozen=True)
class DefencePoint:
    """One training radius ε of :func:`defence_sweep`.

    Attributes:
        eps: the radius (0: plain training). test_accuracy: clean test accuracy.
        distance: ``(B,)`` minimal perturbation ‖δ‖ of every test digit (``inf`` if none).
        net: the trained network (an :class:`~mini_adv.nets.MLPParams`).
    """

    eps: float
    test_accuracy: float
    distance: np.ndarray
    net: Any

    @property
    def median_distance(self) -> float:
        return float(np.median(self.distance))


def defence_sweep(key: jax.Array, data: tuple[Any, Any, Any, Any], radii: Sequence[float], *,
                  widths: Sequence[int], steps: int, lr: float, pgd_steps: int = 10
                  ) -> list[DefencePoint]:
    """Adversarial training (Madry et al. 2018) at each radius ε, from the same initialisation.

    ε = 0 is plain training; ε > 0 trains on :func:`mini_adv.attacks.pgd_l2` points of radius
    ε computed at the current parameters (``adversarial=dict(eps=ε, steps=pgd_steps)`` of
    :func:`mini_adv.trained.train`). Measured: the clean test accuracy and the minimal
    perturbation of every test digit (:func:`minimal_perturbation`).

    Args:
        key: PRNG key of the initialisation. data: ``(X_train, y_train, X_test, y_test)``.
        radii: training radii ε ≥ 0. widths, steps, lr: as :func:`mini_adv.trained.train`.
        pgd_steps: steps of the inner attack.

    Returns:
        One :class:`DefencePoint` per radius.

    Raises:
        ValueError: for a negative radius or bad training settings.
    """
    from mini_adv.trained import accuracy, train

    key = check_key(key)
    X_tr, y_tr, X_te, y_te = data
    out = []
    for eps in progress([float(e) for e in radii], desc="training radii"):
        eps = float(check_number("eps", eps, low=0.0, strict_low=False))
        adv = dict(eps=eps, steps=pgd_steps) if eps > 0 else None
        net, _ = train(key, X_tr, y_tr, widths, steps=steps, lr=lr, adversarial=adv)
        out.append(DefencePoint(eps=eps, test_accuracy=accuracy(net, X_te, y_te),
                                distance=minimal_perturbation(net, X_te).distance, net=net))
    return out


@dataclasses.dataclass(frozen=True)
class RobustStart:
    """Gradient descent started at chapter 5's robust network (arrays over checkpoints).

    Attributes:
        steps: ``(K,)`` steps taken at each checkpoint (0 = the robust network itself).
        universal: ``(K, n)`` flip distance of every training point along −y_i û, over ‖x‖.
        normalized_margin: ``(K,)`` γ̄(θ_t).
        predicted: ‖x‖/√n over ‖x‖ = 1/√n, the KKT network's flip size in the idealisation.
    """

    steps: np.ndarray
    universal: np.ndarray
    normalized_margin: np.ndarray
    predicted: float

    @property
    def median(self) -> np.ndarray:
        return np.median(self.universal, axis=1)


def robust_start(key: jax.Array, *, d: int, n: int, checkpoints: int, steps_per: int,
                 lr: float = 0.1) -> RobustStart:
    """Start chapter 5's normalised gradient descent at the robust network N_rob, not near 0.

    Nearly orthogonal data (:func:`mini_adv.data.nearly_orthogonal`), N_rob of
    :func:`mini_adv.margin.robust_network` (it fits them with a certified radius about
    ‖x‖/2, and is not a KKT point of the max-margin problem), then ``checkpoints`` chunks of
    ``steps_per`` steps of :func:`mini_adv.margin.train_kernel` (NGD, logistic loss, constant
    step ``lr``), each continuing exactly where the last stopped. At every checkpoint: the
    flip distance of every training point along −y_i û and the normalised margin.

    Returns:
        :class:`RobustStart` with K = ``checkpoints`` + 1 rows.

    Raises:
        ValueError: for a bad key or non-positive sizes or step.
    """
    key = check_key(key)
    d, n = check_size("d", d), check_size("n", n)
    checkpoints, steps_per = check_size("checkpoints", checkpoints), check_size("steps_per", steps_per)
    lr = float(check_number("lr", lr, low=0.0))
    X, y = nearly_orthogonal(key, n, d)
    params = robust_params(X, y)
    rows, margins = [], []
    step, s = jnp.asarray(lr, X.dtype), jnp.asarray(0.0, X.dtype)
    for k in progress(range(checkpoints + 1), desc="checkpoints"):
        if k:  # θ = e^s φ: continue from the last direction φ and log-norm s
            params, rec = train_kernel(params, X, y, step, step, steps_per, "logistic", "ngd",
                                       log_scale=s)
            s = rec[2][-1]
        net = TwoLayerNet.from_params(params)
        rows.append(flip_distances(net, X, y).universal / math.sqrt(d))
        margins.append(normalized_margin(net, X, y))
    return RobustStart(steps=np.arange(checkpoints + 1) * steps_per, universal=np.stack(rows),
                       normalized_margin=np.asarray(margins), predicted=1 / math.sqrt(n))


CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
"""CIFAR-10's per-channel mean over the training set, pixels in [0, 1] (R, G, B)."""

CIFAR10_STD = (0.2470, 0.2435, 0.2616)
"""CIFAR-10's per-channel standard deviation over all training pixels (R, G, B)."""

CIFAR10_D = 3 * 32 * 32
"""CIFAR-10's dimension: 32 × 32 pixels, 3 colour channels."""


@dataclasses.dataclass(frozen=True)
class PracticeScale:
    """The book's unit on an image data set. Attributes: ``d``; ``rms_norm`` = √(E‖x‖²);
    ``unit`` = rms_norm/√d, the book's ‖x‖/√d; ``eps``, the practitioners' ℓ2 budget, and
    ``eps_in_units`` = eps/unit."""

    d: int
    rms_norm: float
    unit: float
    eps: float
    eps_in_units: float


def cifar10_scale(eps: float = 0.5) -> PracticeScale:
    """‖x‖/√d on CIFAR-10 from its published per-channel statistics, against an ℓ2 budget.

    With pixels in [0, 1], E x_p² = m_c² + s_c² for a pixel of channel c (mean m_c, standard
    deviation s_c over all training pixels: :data:`CIFAR10_MEAN`, :data:`CIFAR10_STD`), so
    E‖x‖² = 1024 Σ_c (m_c² + s_c²) over the 3 × 32 × 32 = 3072 coordinates. The book's unit
    is √(E‖x‖²)/√d; RobustBench's ℓ2 threat model uses ε = 0.5 on these pixels.
    """
    eps = float(check_number("eps", eps, low=0.0))
    sq = 1024 * sum(m * m + s * s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD))
    rms = math.sqrt(sq)
    unit = rms / math.sqrt(CIFAR10_D)
    return PracticeScale(d=CIFAR10_D, rms_norm=rms, unit=unit, eps=eps, eps_in_units=eps / unit)

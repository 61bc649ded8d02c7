"""Chapter 5's experiments: flip distances of trained networks, the sweep over n, clusters.

Flip distances are measured with :func:`mini_adv.attacks.ray_flip_distance` (its kernel when
vmapped), so a reported flip is a verified sign change.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mini_adv.attacks import default_budget, ray_flip_distance, ray_flip_kernel
from mini_adv.data import cluster_means, clusters, coherence, nearly_orthogonal
from mini_adv.gradients import flip_direction, flip_direction_from, value_and_input_grad_kernel
from mini_adv.margin.network import _params_and_data, init_two_layer
from mini_adv.margin.robust import _certified_radius, _universal, universal_direction
from mini_adv.margin.training import TrainHistory, _check_method, _resolve_lr, train, train_kernel
from mini_adv.nets import MLPParams, Network, apply
from mini_adv.regimes import typical_coherence
from mini_adv.runtime import progress
from mini_adv.validation import check_key, check_number, check_size


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
    U = -y[:, None] * _universal(X, y)[None, :]
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
    crossing beyond float rounding noise). Our reading of Vardi, Yehudai & Shamir (2022): at
    a KKT point on nearly orthogonal data, the first is O(‖x‖/√n); in the symmetric idealisation (balanced classes, exactly
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
    max_distance = float(default_budget(X)) if max_distance is None else max_distance
    r_u = ray_flip_distance(params, X, -y[:, None] * u[None, :], max_distance=max_distance)
    r_g = ray_flip_distance(params, X, flip_direction(params, X), max_distance=max_distance)
    return FlipDistances(universal=np.asarray(r_u.distance), gradient=np.asarray(r_g.distance),
                         norms=np.asarray(jnp.linalg.norm(X, axis=-1)))


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
        """Medians over the fitted data sets (accuracy 1), as plain numbers.

        ``median_sqrt_n_*`` and ``robust_radius_over_trained`` are NaN, explicitly, when no
        data set was fitted (``fitted`` = 0): there is no trained flip to measure.
        """
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

    The key of each n is ``fold_in(key, n)``, so adding an n leaves the draws of the others
    unchanged.

    Returns:
        One :class:`SweepPoint` per n, in the order of ``ns``.

    Raises:
        ValueError: for a key that is not a PRNG key, an empty ``ns`` or non-positive sizes,
            or an unknown loss or method.
    """
    key = check_key(key)
    d, width, steps = check_size("d", d), check_size("width", width), check_size("steps", steps)
    n_datasets = check_size("n_datasets", n_datasets)
    ns = [check_size("n", n) for n in ns]
    if not ns:
        raise ValueError("ns is empty; pass at least one number of points n")
    _check_method(loss, method)
    lr_first, lr_last = _resolve_lr(lr, method)
    init_scale = float(check_number("init_scale", init_scale, low=0.0))
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


@dataclasses.dataclass(frozen=True)
class FlipScalingFit:
    """The power law median(dist/‖x‖) ≈ C·n^slope of :func:`fit_flip_scaling`.

    Attributes:
        slope: the fitted exponent (prediction −1/2). C: the fitted constant; it belongs to
            the fitted slope and is *not* comparable with the idealisation's constant 1 when
            the slope differs from −1/2.
        C_half: the constant of the fit with the slope held at −1/2, i.e. the geometric mean
            of √n·median over the n: this is the number to compare with the constant 1 of
            the symmetric KKT point (chapter 5, ``lem-symmetric``).
        which: ``"universal"`` (along −y_i û) or ``"gradient"``.
        ns: the numbers of points n. medians: the fitted medians, one per n.
    """

    slope: float
    C: float
    which: str
    ns: tuple[int, ...]
    medians: tuple[float, ...]
    C_half: float = math.nan


def fit_flip_scaling(sweep: Sequence[SweepPoint], which: str = "universal") -> FlipScalingFit:
    """Fit median(dist/‖x‖) ≈ C·n^slope over a :func:`sweep_n` result (prediction: slope −1/2).

    The medians are over the points of the fitted data sets (training accuracy 1) at each n;
    the fit is least squares on log scales, once with a free slope (``slope``, ``C``) and
    once with the slope held at the prediction −1/2 (``C_half`` = exp of the mean of
    log(√n·median) over the n), the constant to compare with the idealisation's 1.

    Args:
        sweep: the :class:`SweepPoint` list of :func:`sweep_n`, two or more distinct n.
        which: ``"universal"`` (along −y_i û) or ``"gradient"``.

    Returns:
        :class:`FlipScalingFit`.

    Raises:
        ValueError: for an unknown ``which``, fewer than two points, an n where no data set
            was fitted (train longer), or an infinite median (most points did not flip
            within the budget).
    """
    from mini_adv.stats import fit_power_law

    if which not in ("universal", "gradient"):
        raise ValueError(f"which must be 'universal' or 'gradient'; got {which!r}")
    ns, med = [], []
    for p in sweep:
        ok = p.accuracy >= 1.0
        if not ok.any():
            raise ValueError(f"no data set was fitted at n = {p.n} (training accuracy below 1 on "
                             f"all {ok.size}); train longer (more steps) before fitting the scaling")
        m = float(np.median((getattr(p.trained, which) / p.trained.norms)[ok]))
        if not math.isfinite(m):
            raise ValueError(f"the median flip distance at n = {p.n} is infinite (most points did "
                             f"not flip within the budget); the scaling cannot be fitted")
        ns.append(p.n)
        med.append(m)
    if len(set(ns)) < 2:
        raise ValueError(f"fit_flip_scaling needs sweep points at two or more distinct n; got {ns}")
    slope, C = fit_power_law(ns, med)
    C_half = float(np.exp(np.mean(np.log(np.asarray(med)) + 0.5 * np.log(np.asarray(ns, float)))))
    return FlipScalingFit(slope=slope, C=C, which=which, ns=tuple(ns), medians=tuple(med),
                          C_half=C_half)


@dataclasses.dataclass(frozen=True)
class RegimeResult:
    """:func:`regime_experiment`: a :func:`sweep_n` inside the theorem's near-orthogonality.

    Attributes:
        points: one :class:`SweepPoint` per n (trained flips along −y_i û and along the
            gradient, the robust network's certified radii, n·μ(X) of each data set).
        threshold: the bound on n·μ(X) that defines the regime (default 1/3, i.e. c = 3 in
            max_{i≠k} |⟨x_i, x_k⟩| ≤ ‖x‖²/(c n)).
    """

    points: tuple[SweepPoint, ...]
    threshold: float

    @property
    def ns(self) -> tuple[int, ...]:
        return tuple(p.n for p in self.points)

    def summary(self) -> list[dict[str, float]]:
        """Per n, over the fitted data sets (training accuracy 1): the two bounds, relative to ‖x‖.

        ``upper_*``: the trained network's first flip along −y_i û, an upper bound on its
        minimal adversarial distance at x_i (median and largest over points). ``lower_*``: the
        robust network's certified radius r_i, a lower bound on its minimal adversarial
        distance (median and smallest). ``ordered``: the fraction of points where the upper
        bound of the trained network lies below the lower bound of the robust one (there the
        trained network is provably less robust at x_i). ``ratio``: median lower / median
        upper (√n/2 in the symmetric idealisation, minus the erosion of r_i by μ).
        ``n_coherence_max``: the largest n·μ(X) over *all* data sets; ``inside``: whether it
        is at most :attr:`threshold`. NaN where no data set was fitted.
        """
        out = []
        for p in self.points:
            ok = p.accuracy >= 1.0
            up = (p.trained.universal / p.trained.norms)[ok]
            lo = (p.robust_radius / p.trained.norms)[ok]
            ncoh = float(np.max(p.n * p.coherence))
            have = up.size > 0
            nan = math.nan
            out.append({
                "n": p.n, "d": p.d, "fitted": float(np.mean(ok)),
                "n_coherence_max": ncoh, "inside": bool(ncoh <= self.threshold),
                "prediction": 1.0 / math.sqrt(p.n),
                "upper_median": float(np.median(up)) if have else nan,
                "upper_max": float(np.max(up)) if have else nan,
                "lower_median": float(np.median(lo)) if have else nan,
                "lower_min": float(np.min(lo)) if have else nan,
                "ordered": float(np.mean(up < lo)) if have else nan,
                "ratio": float(np.median(lo) / np.median(up)) if have else nan,
                "sqrt_n_upper_median": float(math.sqrt(p.n) * np.median(up)) if have else nan})
        return out


def regime_experiment(key: jax.Array, d: int, ns: Sequence[int], *, n_datasets: int,
                      width: int, steps: int, threshold: float = 1 / 3,
                      **sweep_kwargs: Any) -> RegimeResult:
    """The flip distance inside the theorem's regime: n·μ(X) ≤ ``threshold``, trained vs robust.

    Vardi, Yehudai & Shamir's near-orthogonality reads max_{i≠k} |⟨x_i, x_k⟩| ≤ ‖x‖²/(c n),
    i.e. n·μ(X) ≤ 1/c (:func:`~mini_adv.data.coherence`); the book's sketch of class purity
    needs c > 1 and uses c = 3 below (``threshold`` = 1/c). For n points uniform on the
    sphere this needs d of order n² ln n / threshold²: small n, large d. This runs
    :func:`sweep_n` at such sizes (same data, training and rays) and compares, point by
    point,

    * the trained network's first flip along −y_i û: an **upper** bound on its minimal
      adversarial distance at x_i (prediction ‖x‖/√n), and
    * the certified radius r_i of :func:`~mini_adv.margin.robust_network` on the same data:
      a **lower** bound on the robust network's minimal adversarial distance (≈ ‖x‖/2).

    Where upper < lower, the trained network is provably less robust at x_i than N_rob. In
    the symmetric idealisation the ratio is √n/2, so inside the regime (n ≲ √d up to logs)
    the contrast is at most of order d^{1/4}.

    Args:
        key: PRNG key (as for :func:`sweep_n`). d: the input dimension.
        ns: the numbers of points, each n ≥ 2. n_datasets, width, steps: as for :func:`sweep_n`.
        threshold: the regime's bound on n·μ(X), in (0, 1].
        sweep_kwargs: further arguments of :func:`sweep_n` (bias, loss, method, lr, init_scale).

    Returns:
        :class:`RegimeResult`; its ``summary()`` reports the measured n·μ(X) beside
        ``threshold``.

    Raises:
        ValueError: for a bad threshold, an n < 2, a configuration whose typical n·μ(X)
            (n times :func:`mini_adv.regimes.typical_coherence`, the median μ(X) of n
            points uniform on the sphere) is above ``threshold`` (outside the regime: use
            :func:`sweep_n`, or raise d), and everything :func:`sweep_n` rejects.
    """
    key = check_key(key)
    threshold = float(check_number("threshold", threshold, low=0.0, high=1.0))
    d = check_size("d", d)
    ns = [check_size("n", n) for n in ns]
    if not ns:
        raise ValueError("ns is empty; pass at least one number of points n")
    for n in ns:
        if n < 2:
            raise ValueError(f"n·μ(X) needs n ≥ 2 points; got n = {n}")
        typical = n * typical_coherence(n, d)
        if typical > threshold:
            need = math.ceil(d * (typical / threshold) ** 2)
            raise ValueError(f"n = {n}, d = {d} is outside the regime: the typical n·μ(X) is "
                             f"{typical:.2f} > threshold {threshold:.3g}; raise d to about "
                             f"{need} or more, or use sweep_n for experiments outside it")
    points = sweep_n(key, d, ns, n_datasets=n_datasets, width=width, steps=steps,
                     **sweep_kwargs)
    return RegimeResult(points=tuple(points), threshold=threshold)


@dataclasses.dataclass(frozen=True)
class FlipProfiles:
    """N along straight lines from every training point (:func:`flip_profiles`).

    Attributes:
        t: ``(T,)`` distances moved, in units of the prediction ‖x_i‖/√n.
        universal, gradient, random: ``(T, n)`` ratios y_i N(x_i + t u_i)/y_i N(x_i) along
            u_i = −y_i û, along the normalised gradient direction and along a random unit
            direction; below 0 the sign has flipped.
    """

    t: np.ndarray
    universal: np.ndarray
    gradient: np.ndarray
    random: np.ndarray

    DIRECTIONS = ("universal", "gradient", "random")

    def flipped_fraction(self, which: str) -> float:
        """The fraction of points whose sign flips within ``t.max()`` along ``which``."""
        if which not in self.DIRECTIONS:
            raise ValueError(f"which must be one of {self.DIRECTIONS}; got {which!r}")
        return float(np.mean(np.any(getattr(self, which) < 0, axis=0)))


def flip_profiles(key: jax.Array, net: Network, X: Any, y: Any, *, t_max: float = 3.0,
                  points: int = 121) -> FlipProfiles:
    """y_i N(x_i + t u_i)/y_i N(x_i) along three directions, t in units of ‖x_i‖/√n.

    For u_i = −y_i û (:func:`~mini_adv.margin.universal_direction`), for
    u_i = −sign(N(x_i)) ∇N(x_i)/‖∇N(x_i)‖ and for a random unit direction u_i (drawn with
    ``key``), at ``points`` values of t from 0 to ``t_max``: the prediction is a flip at t = 1.

    Args:
        key: PRNG key of the random directions. net: a depth-2 ReLU network.
        X, y: the training data, labels ±1. t_max: the largest t > 0. points: T ≥ 2.

    Returns:
        :class:`FlipProfiles`.

    Raises:
        ValueError: for a key that is not a PRNG key, a network that is not depth-2 ReLU,
            mismatched shapes, NaN/inf, labels other than ±1, a point where N(x_i) = 0
            (the ratio is undefined), Σ_i y_i x_i = 0, or bad ``t_max``/``points``.
    """
    key = check_key(key)
    params, X, y = _params_and_data(net, X, y)
    t_max = float(check_number("t_max", t_max, low=0.0))
    points = check_size("points", points)
    n, d = X.shape
    f0 = y * apply(params, X)
    if bool(jnp.any(f0 == 0)):
        raise ValueError(f"N(x_i) = 0 at {int(jnp.sum(f0 == 0))} training points: the ratio "
                         f"y_i N(x_i + t u_i)/y_i N(x_i) is undefined there")
    unit = jnp.linalg.norm(X, axis=-1) / math.sqrt(n)
    R = jax.random.normal(key, X.shape, X.dtype)
    dirs = {"universal": -y[:, None] * universal_direction(X, y)[None, :],
            "gradient": flip_direction(params, X),
            "random": R / jnp.linalg.norm(R, axis=-1, keepdims=True)}
    ts = jnp.linspace(0.0, t_max, points, dtype=X.dtype)
    vals = {}
    for name, U in dirs.items():
        pts = X[None] + (ts[:, None, None] * unit[None, :, None]) * U[None]
        vals[name] = np.asarray(y[None] * apply(params, pts.reshape(-1, d)).reshape(points, n)
                                / f0[None])
    return FlipProfiles(t=np.asarray(ts), **vals)


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

    Args:
        key: PRNG key. d, k, n_train, n_test: sizes. noise: relative noise ‖ξ‖/‖μ‖.
        width, steps, train_kwargs: passed to :func:`train`.

    Returns:
        :class:`ClusterResult`.

    Raises:
        ValueError: for a key that is not a PRNG key, non-positive sizes, a bad noise level,
            or a network that classifies no test point correctly.
    """
    key = check_key(key)
    k, d = check_size("k", k), check_size("d", d)
    n_train, n_test = check_size("n_train", n_train), check_size("n_test", n_test)
    k_means, k_tr, k_te, k_net = jax.random.split(key, 4)
    means, labels = cluster_means(k_means, k, d)
    X, y, _ = clusters(k_tr, means, labels, n_train, noise=noise)
    Xt, yt, _ = clusters(k_te, means, labels, n_test, noise=noise)
    net, hist = train(k_net, X, y, width=width, steps=steps, **train_kwargs)
    params = net.params()
    correct = np.asarray(yt * apply(params, Xt) > 0)
    if not correct.any():
        raise ValueError(f"the trained network classifies none of the {n_test} test points "
                         f"correctly (training accuracy {float(hist.accuracy[-1]):.0%}), so there is "
                         f"no point to attack; train longer (more steps) or use less noise")
    u = universal_direction(X, y)
    Xc, yc = Xt[correct], yt[correct]
    budget = float(default_budget(Xt))
    r_u = ray_flip_distance(params, Xc, -yc[:, None] * u[None, :], max_distance=budget)
    r_g = ray_flip_distance(params, Xc, flip_direction(params, Xc), max_distance=budget)
    return ClusterResult(
        k=k, d=d, noise=float(noise), train_accuracy=float(hist.accuracy[-1]),
        test_accuracy=float(np.mean(correct)),
        test=FlipDistances(np.asarray(r_u.distance), np.asarray(r_g.distance),
                           np.asarray(jnp.linalg.norm(Xc, axis=-1))),
        mean_norm=float(jnp.linalg.norm(means[0])), coherence=coherence(means), history=hist)

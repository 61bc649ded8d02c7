"""The max-margin problem (P) at a trained network: normalised margin, KKT multipliers, units.

    min ½‖θ‖²   s.t.   y_i N_θ(x_i) ≥ 1  for all i                                  (P)

:func:`normalized_margin` (γ̄, whose stationary points are the KKT points of (P)),
:func:`kkt_check` (the multipliers λ ≥ 0 by non-negative least squares on the system built by
:func:`_kkt_system`) and :func:`unit_structure` (class purity, bias signs and balancedness
of the units: the book's reconstruction of Vardi, Yehudai & Shamir 2022). Host-side NumPy post-processing in float64.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax.numpy as jnp
import numpy as np

from mini_adv.margin.network import _params_and_data, _sqnorm
from mini_adv.margin.robust import universal_direction
from mini_adv.nets import Network, apply
from mini_adv.validation import check_number, check_size


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


def _kkt_system(K: np.ndarray, v: np.ndarray, b: np.ndarray | None, X: np.ndarray,
                y: np.ndarray, kink_tol: float, *, max_entries: int = 20_000_000
                ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """The stationarity equations of (P) as one NNLS system  A·(λ, μ) ≈ t,  (λ, μ) ≥ 0.

    For the scaled network (min_i y_i N(x_i) = 1) with units (w_j, b_j, v_j), K = [w_1 … w_m]:
    per unit j, the rows of A and t are, with σ'_ij = 1{w_jᵀx_i + b_j > 0} off the kink,

        in-span w-equations  (k rows):  Σ_i λ_i v_j y_i σ'_ij R[:, i] + Σ_kink μ_ij v_j y_i R[:, i] = Qᵀw_j
        v-equation            (1 row):  Σ_i λ_i y_i σ(w_jᵀx_i + b_j)                           = v_j
        b-equation  (if biases, 1 row):  Σ_i λ_i v_j y_i σ'_ij + Σ_kink μ_ij v_j y_i              = b_j

    where Xᵀ = Q R (so x_i = Q R[:, i], k = rank), and (i, j) is on the kink when
    |w_jᵀx_i + b_j| ≤ kink_tol·‖(w_j, b_j)‖‖(x_i, 1)‖; such a pair gets a free column μ_ij
    and no σ'_ij term.

    Args:
        K: ``(d, m)``. v: ``(m,)``. b: ``(m,)`` or ``None`` (bias-free). X: ``(n, d)``.
        y: ``(n,)`` ±1. kink_tol: as in :func:`kkt_check`. max_entries: size limit of A.

    Returns:
        ``(A, t, perp2, pairs)``: ``A`` of shape ``(m, rows, n + P)`` with
        rows = k + 1 (+ 1 with biases), ``t`` of shape ``(m, rows)``, perp2 = ‖W − Q Qᵀ W‖²
        (the part of W outside span{x_i}, which no λ can fit), and the ``(P, 2)`` kink
        pairs (i, j) in column order n, n + 1, ….

    Raises:
        ValueError: if A would have more than ``max_entries`` entries.
    """
    has_b = b is not None
    b = b if has_b else np.zeros_like(v)
    Xn, yn = X, y
    n, m = Xn.shape[0], v.size
    Z = Xn @ K + b
    xs = np.sqrt(np.sum(Xn * Xn, axis=1) + (1.0 if has_b else 0.0))
    ws = np.sqrt(np.sum(K * K, axis=0) + b * b)
    rel = Z / np.maximum(xs[:, None] * ws[None, :], np.finfo(float).tiny)
    # kink_tol = 0: λ alone with σ'(0) = 0, also where a pre-activation is exactly 0
    kink = np.abs(rel) <= kink_tol if kink_tol > 0 else np.zeros(rel.shape, bool)
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
    return A, t, perp2, pairs


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
    kink_tol = float(check_number("kink_tol", kink_tol, low=0.0, strict_low=False, high=1.0,
                                  strict_high=True))
    support_tol = float(check_number("support_tol", support_tol, low=0.0))
    max_entries = check_size("max_entries", max_entries)
    Xn, yn = np.asarray(X, np.float64), np.asarray(y, np.float64)
    K = np.asarray(params.kernels[0], np.float64)
    v = np.asarray(params.readout, np.float64)
    has_b = params.biases is not None
    b = np.asarray(params.biases[0], np.float64) if has_b else np.zeros_like(v)
    n = Xn.shape[0]
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
    A, t, perp2, pairs = _kkt_system(K, v, b if has_b else None, Xn, yn, kink_tol,
                                     max_entries=max_entries)
    n = Xn.shape[0]
    cols = A.shape[-1]
    sol, res = scipy.optimize.nnls(A.reshape(-1, cols), t.reshape(-1), maxiter=50 * cols)
    lam, mu = sol[:n], sol[n:]
    theta2 = float(np.sum(K * K) + np.sum(v * v) + np.sum(b * b))
    residual = math.sqrt(res ** 2 + perp2) / math.sqrt(theta2)
    excess = float(np.max(np.maximum(mu - lam[pairs[:, 0]], 0.0))) / max(lam.max(), 1e-300) \
        if len(pairs) else 0.0
    slack = float(np.sum(lam * (u - 1.0)) / max(np.sum(lam), 1e-300))
    return KKTReport(lam=lam, margins=u, support=u <= 1.0 + support_tol, residual=residual,
                     slackness=slack, kink_pairs=len(pairs), kink_excess=excess, scale=c)


def normalized_margin(net: Network, X: Any, y: Any) -> float:
    """γ̄(θ) = min_i y_i N_θ(x_i) / ‖θ‖², the normalised margin of a 2-homogeneous network.

    Scale-free: γ̄(cθ) = γ̄(θ) because N_{cθ} = c² N_θ (degree-2 homogeneity; the hidden
    biases count in ‖θ‖² like the weights). The KKT points of (P) are the stationary
    points of γ̄; a point scaled to min_i y_i N(x_i) = 1 has ‖θ‖² = 1/γ̄ (Lyu & Li 2020).
    Negative when some point is misclassified.

    Raises:
        ValueError: for a network that is not depth-2 ReLU or is zero (‖θ‖ = 0), mismatched
            shapes, NaN/inf or labels other than ±1.
    """
    params, X, y = _params_and_data(net, X, y)
    norm2 = float(_sqnorm(params))
    if norm2 == 0.0:
        raise ValueError("the network is zero (‖θ‖ = 0): its normalised margin is undefined")
    return float(jnp.min(y * apply(params, X))) / norm2


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

    At a KKT point of (P) on nearly orthogonal data (the book's reconstruction of Vardi, Yehudai
    & Shamir 2022; purity and the bias sign under chapter 5's assumptions on the multipliers
    and the kinks):

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

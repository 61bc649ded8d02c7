"""Small statistics shared by the chapters' experiments.

* :func:`fit_power_law` — least-squares fit of y ≈ C·x^a on log–log scales (every scaling law
  of the book: chapters 2–5).
* :func:`network_mean` — the mean over independent networks and its standard error. Inputs
  on one network share its randomness (its weights), so they are not independent replicates:
  the book's error bars come from the spread of the N per-network means, not from all N·B
  values (chapters 1–3).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np


def fit_power_law(x: Any, y: Any) -> tuple[float, float]:
    """Least-squares fit of log y = log C + a log x: returns ``(a, C)`` with y ≈ C x^a.

    Args:
        x, y: positive finite values of the same length ≥ 2 (any shape; flattened).

    Returns:
        ``(a, C)``: the slope on log–log axes and the constant.

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


@dataclasses.dataclass(frozen=True)
class NetworkMean:
    """A mean over independent networks with its standard error.

    Attributes:
        mean: the mean of the per-network means.
        se: their standard deviation (ddof = 1) over √n; ``inf`` if n = 1 (no spread to
            estimate it from).
        n: the number of networks that had at least one finite value.
    """

    mean: float
    se: float
    n: int


def network_mean(values: Any, *, scale: float = 1.0) -> NetworkMean:
    """Mean ± standard error over networks of ``scale`` · (per-network mean of ``values``).

        m_i = mean_j v_ij over the finite v_ij of network i,
        mean = (scale/n) Σ_i m_i,   se = scale · sd(m_i)/√n,

    over the n networks with at least one finite value (NaN and ±inf mark missing values,
    e.g. inputs that did not flip).

    Args:
        values: ``(N, B)`` values per network and input, or ``(N,)`` one value per network.
        scale: a constant factor (e.g. √d), applied to the mean and the s.e.

    Returns:
        A :class:`NetworkMean`.

    Raises:
        ValueError: if ``values`` is not 1-D or 2-D, or no network has a finite value (the
            mean is undefined: say so rather than return NaN).
    """
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2:
        raise ValueError(f"values must have shape (N, B) or (N,); got shape {v.shape}")
    v = np.where(np.isfinite(v), v, np.nan)
    keep = np.any(np.isfinite(v), axis=1)
    if not keep.any():
        raise ValueError(f"no network has a finite value (all {v.shape[0]} networks: no flip, "
                         f"or ∇f = 0 everywhere); the mean over networks is undefined")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_net = np.nanmean(v[keep], axis=1)
    n = int(per_net.size)
    se = float(per_net.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    return NetworkMean(mean=scale * float(per_net.mean()), se=scale * se, n=n)

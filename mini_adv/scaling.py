"""Chapter 3: the gradient-flow argument of Daniely & Shacham, measured.

Daniely & Shacham (2020) prove that for a random bias-free ReLU network with shrinking
widths d = d₀ ≫ d₁ ≫ ⋯ ≫ d_L (each d_ℓ = o(d_{ℓ−1})), most inputs x have an adversarial
example at distance O_P(‖x‖/√d), reached by gradient flow (the book uses the normalised
flow, :func:`mini_adv.attacks.gradient_flow`); Bartlett, Bubeck & Cherapanamjeri (2021)
prove the same scale, for one gradient step, with widths that need not shrink. The proofs do
not give the constant; this module measures it:

* :func:`measure_flow` runs the flow from many inputs on many independent networks at once
  (the attack kernel runs on a stack of networks through
  :func:`mini_adv.parallel.map_networks`) and returns relative
  flip distances ‖δ‖/‖x‖, the linearised prediction |f|/(‖∇f‖‖x‖), path lengths and
  statuses, with every flip re-checked in float64;
* :func:`sweep_flow` repeats it over d with a width rule d ↦ widths: :func:`shrinking_widths`
  (fixed ratios, [d, d/4, d/16]) or :func:`vanishing_widths` (ratios → 0,
  [d, d^{3/4}, d^{1/2}]), and
  :func:`fit_flow_scaling` fits ‖δ‖/‖x‖ ≈ C·d^slope (the theorem: slope −1/2);
* :func:`compare_methods` puts one gradient step, the flow, DeepFool and rays (along ∇f and
  random) side by side on the same draws;
* :func:`gradient_along_flow` measures ‖∇f‖ along the flow's path (the proof's lemmas);
* :func:`flow_plane` computes the flow's path in the plane of x and ∇f(x), for the figure
  :func:`mini_adv.figures.ch3.draw_flow_plane`;
* :func:`flow_paths` records the paths from many inputs, each in its own (x, ∇f(x)) plane in
  units of ‖x‖/√d, for the interactive figure :func:`mini_adv.figures.ch3.draw_flow_paths`.

Every many-network experiment runs its kernel through :func:`mini_adv.parallel.map_networks`
(compiled once per shape). The chapter's figures and tables are in :mod:`mini_adv.figures.ch3`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mini_adv.attacks import (AttackResult, Status, deepfool_kernel, gradient_flow_kernel,
                              gradient_flow_path, gradient_flow_path_kernel, gradient_step_kernel,
                              ray_flip_kernel, verify_float64)
from mini_adv.data import sphere, sphere_batches
from mini_adv.gradients import (flip_direction_from, linearized_distance_from,
                                value_and_input_grad_kernel)
from mini_adv.nets import MLPParams, Network, as_params, init_params
from mini_adv.parallel import map_networks
from mini_adv.rays import plane_slice
from mini_adv.runtime import progress
from mini_adv.stats import fit_power_law, network_mean
from mini_adv.validation import check_batch, check_key, check_number, check_size, check_widths

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
"""E|Z| for Z ~ N(0, 1): the predicted limit of √d · E[‖δ‖/‖x‖] for the linearisation."""


def shrinking_widths(d: int, factors: Sequence[int] = (4, 16)) -> list[int]:
    """``[d, d/f₁, d/f₂, …]``: widths that shrink by fixed ratios (the chapter's [d, d/4, d/16]).

    The ratios d_ℓ/d_{ℓ−1} stay fixed as d grows, so these widths are *not* in Daniely &
    Shacham's hypothesis d_ℓ = o(d_{ℓ−1}) (use :func:`vanishing_widths` for that); they are
    polynomially related to d, the setting of Bartlett, Bubeck & Cherapanamjeri (2021).

    Args:
        d: the input dimension. factors: the divisors f₁, f₂, ... of the hidden widths.

    Returns:
        ``[d, d // f₁, d // f₂, ...]``.

    Raises:
        ValueError: if d or a factor is not a positive integer, or a width would be < 1.
    """
    d = check_size("d", d)
    factors = [check_size("every factor", f) for f in factors]
    widths = [d] + [d // f for f in factors]
    if min(widths) < 1:
        raise ValueError(f"d = {d} is too small for factors {list(factors)}: widths {widths}; "
                         f"use d ≥ {max(factors)}")
    return widths


def vanishing_widths(d: int, exponents: Sequence[float] = (0.75, 0.5)) -> list[int]:
    """``[d, round(d^{a₁}), round(d^{a₂}), …]``: widths whose ratios vanish as d grows.

    With 1 > a₁ > a₂ > ⋯ > 0 each ratio d_ℓ/d_{ℓ−1} = d^{a_ℓ − a_{ℓ−1}} → 0 (a₀ = 1): Daniely &
    Shacham's (2020) hypothesis d_ℓ = o(d_{ℓ−1}). The default (3/4, 1/2) gives
    ``[d, d^{3/4}, d^{1/2}]``, both ratios d^{−1/4}; at d = 256 that is [256, 64, 16], the
    same as :func:`shrinking_widths`, and narrower beyond.

    Args:
        d: the input dimension. exponents: a₁ > a₂ > ⋯, each in (0, 1).

    Returns:
        ``[d, round(d**a₁), round(d**a₂), ...]``.

    Raises:
        ValueError: if d is not a positive integer, the exponents are empty, not in (0, 1)
            or not strictly decreasing, or a width would be < 1.
    """
    d = check_size("d", d)
    exponents = [check_number("every exponent", a, low=0.0, high=1.0, strict_high=True)
                 for a in exponents]
    if not exponents:
        raise ValueError("exponents is empty; pass at least one exponent in (0, 1)")
    if any(b >= a for a, b in zip(exponents, exponents[1:])):
        raise ValueError(f"exponents must be strictly decreasing (each ratio d^(a_l - a_(l-1)) "
                         f"must vanish); got {list(exponents)}")
    widths = [d] + [int(round(d ** a)) for a in exponents]
    if min(widths) < 1:  # cannot happen for d ≥ 1, kept for a clear message
        raise ValueError(f"d = {d} is too small for exponents {exponents}: widths {widths}")
    return widths


@struct.dataclass
class FlowMeasurement:
    """The normalised gradient flow from ``n`` inputs on each of ``N`` random networks.

    Every array has shape ``(N, n)`` (networks × inputs). Distances are relative to ‖x‖.

    Attributes:
        widths: the networks' widths ``(d, h₁, …)`` (static).
        rel_distance: ‖x_adv − x‖/‖x‖ where the flow flipped the sign, ``inf`` elsewhere.
        rel_linear: the linearised distance |f(x)|/(‖∇f(x)‖‖x‖) (``inf`` where ∇f = 0).
        rel_path: the flow's path length to the crossing, relative to ‖x‖ (0 if none).
        flipped: sign flipped, verified by re-evaluation in float32.
        verified64: the same flip re-checked with the network evaluated in float64.
        status: :class:`~mini_adv.attacks.Status` codes.
        steps: Euler steps taken.
    """

    widths: tuple[int, ...] = struct.field(pytree_node=False)
    rel_distance: np.ndarray
    rel_linear: np.ndarray
    rel_path: np.ndarray
    flipped: np.ndarray
    verified64: np.ndarray
    status: np.ndarray
    steps: np.ndarray

    @property
    def d(self) -> int:
        return self.widths[0]

    @property
    def flip_rate(self) -> float:
        """Fraction of inputs the flow flipped within its budget."""
        return float(np.mean(self.flipped))

    @property
    def all_verified(self) -> bool:
        """True if every claimed flip also holds in float64."""
        return bool(np.all(self.verified64[self.flipped]))

    def network_means(self, what: str = "rel_distance") -> np.ndarray:
        """Per-network mean of ``what`` over its flipped inputs, shape ``(N,)`` (NaN if none flipped).

        Inputs on one network share its randomness, so error bars come from the spread of
        these N independent means, not from all N·n values.
        """
        vals = np.where(self.flipped, getattr(self, what), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a network with no flip gives NaN
            return np.nanmean(vals, axis=1)

    def summary(self) -> dict[str, float]:
        """Means with network-level standard errors (:func:`mini_adv.stats.network_mean`).

        Keys: ``d`` (an int); ``sqrt_d_rel_distance`` (√d · mean ‖δ‖/‖x‖ over networks) and
        its ``_se``; ``sqrt_d_rel_linear``; the medians of flow/linear and path/distance and
        the 90 % quantile of the latter, over flipped inputs; ``flip_rate``, ``stuck_rate``
        (stopped at ∇f = 0), ``flat_rate`` (f(x₀) = 0 or ∇f = 0), ``networks_without_flip``,
        ``median_steps``. Where nothing flipped the distance statistics are NaN (no
        distance to average), which ``flip_rate`` = 0 reports.
        """
        rd = math.sqrt(self.d)
        fl = self.flipped
        ratio = self.rel_distance[fl] / self.rel_linear[fl]
        straight = self.rel_path[fl] / self.rel_distance[fl]
        m = network_mean(np.where(fl, self.rel_distance, np.nan), scale=rd) if fl.any() else None
        return {
            "d": int(self.d),
            "sqrt_d_rel_distance": m.mean if m else math.nan,
            "sqrt_d_rel_distance_se": (m.se if m.n > 1 else math.nan) if m else math.nan,
            "sqrt_d_rel_linear": rd * float(np.mean(self.rel_linear[np.isfinite(self.rel_linear)])),
            "flow_over_linear_median": float(np.median(ratio)) if fl.any() else math.nan,
            "path_over_distance_median": float(np.median(straight)) if fl.any() else math.nan,
            "path_over_distance_p90": float(np.quantile(straight, 0.9)) if fl.any() else math.nan,
            "flip_rate": self.flip_rate,
            "stuck_rate": float(np.mean(self.status == Status.ZERO_DIRECTION)),
            "flat_rate": float(np.mean((self.status == Status.ZERO_DIRECTION)
                                       | (self.status == Status.ZERO_OUTPUT))),
            "networks_without_flip": float(np.mean(~np.any(self.flipped, axis=1))),
            "median_steps": float(np.median(self.steps)),
        }


def _flow_one(params: MLPParams, X: jax.Array, max_factor: jax.Array
              ) -> tuple[AttackResult, jax.Array, jax.Array]:
    """For one network: the flow with the budget max_factor·max‖x‖, the linearised distance
    |f|/(‖∇f‖‖x‖) and ‖x‖ (run on a stack of networks by :func:`~mini_adv.parallel.map_networks`;
    ``max_factor`` is traced, so new budgets do not recompile)."""
    nx = jnp.linalg.norm(X, axis=-1)
    f, g = value_and_input_grad_kernel(params, X)
    lin = linearized_distance_from(f, g) / nx
    return gradient_flow_kernel(params, X, max_factor * jnp.max(nx)), lin, nx


def _embed_params(params: MLPParams, widths: Sequence[int]) -> MLPParams:
    """Switch off the units of ``params`` (drawn at larger widths) beyond ``widths``.

    Unit j of hidden layer ℓ is kept for j < widths[ℓ]: the other units get zero incoming
    and outgoing weights (and a zero readout), so their pre-activation is exactly 0 and they
    add exactly 0 to f and to ∇f. The kept weights of layer ℓ ≥ 2 and of the readout are
    multiplied by √(h^emb_{ℓ−1}/h_{ℓ−1}), so that the kept sub-network has exactly the law of
    ``init_params(key, widths)``: (W_ℓ)_{ij} ~ N(0, scale²/h_{ℓ−1}), a_j ~ N(0, 1/h_L). The
    result has the shapes of ``params`` (the compiled kernels of those shapes are reused)
    and computes the function of a network with ``widths``. Done in NumPy (no compilation).
    """
    emb = params.widths
    kernels = []
    for i, K in enumerate(params.kernels):
        K = np.array(K)
        K[..., widths[i]:, :] = 0.0
        K[..., :, widths[i + 1]:] = 0.0
        if i > 0:
            K *= math.sqrt(emb[i] / widths[i])
        kernels.append(jnp.asarray(K))
    a = np.array(params.readout)
    a[..., widths[-1]:] = 0.0
    a *= math.sqrt(emb[-1] / widths[-1])
    return params.replace(kernels=tuple(kernels), readout=jnp.asarray(a))


def measure_flow(key: jax.Array, widths: Sequence[int], *, n_networks: int, n_inputs: int,
                 activation: str = "relu", max_factor: float = 2.0,
                 embed_in: Sequence[int] | None = None) -> FlowMeasurement:
    """Run the normalised gradient flow on ``n_networks`` fresh networks × ``n_inputs`` inputs.

    Each network is drawn with :func:`~mini_adv.nets.init_params` (bias-free, He scale,
    Gaussian mean-zero readout) and gets its own inputs, uniform on the sphere of radius √d
    and independent of the weights (the theorem's setting). All networks run
    :func:`~mini_adv.attacks.gradient_flow_kernel`, with a path budget of ``max_factor``·‖x‖,
    through :func:`~mini_adv.parallel.map_networks` (one vmapped call for small networks,
    else one call per network, by size with the default threshold, which suits the flow;
    sharded over all local devices). Every flip is then re-checked in float64. The
    distances are relative: ‖δ‖/‖x‖, and the linearised prediction |f(x)|/(‖∇f(x)‖‖x‖).

    With ``embed_in`` (widths ``[d, H₁, …]`` with every H_ℓ ≥ h_ℓ), the networks are drawn at
    the widths ``embed_in`` and the units beyond ``widths`` are switched off (zero weights;
    the kept weights rescaled so that the kept network has exactly the law of a draw at
    ``widths``). The functions, hence the flows, are those of networks with ``widths``, but
    the arrays have the shapes of ``embed_in``: a sweep whose widths change with d then reuses
    the kernels compiled for another sweep at ``embed_in`` (compilation, not arithmetic, is
    most of the cost at the book's CPU sizes), at the arithmetic cost of ``embed_in``.

    Args:
        key: PRNG key. widths: ``[d, h₁, ...]``.
        n_networks, n_inputs: N networks, n inputs per network.
        activation: activation name. max_factor: the path budget in units of ‖x‖ (> 0).
        embed_in: optional larger widths to run the networks at (same d and depth).

    Returns:
        A :class:`FlowMeasurement` with ``(N, n)`` arrays; its ``widths`` are ``widths``.

    Raises:
        ValueError: for invalid widths, counts, budget or key, or an ``embed_in`` with another
            d or depth or a width below ``widths``.
    """
    check_key(key)
    n_networks, n_inputs = check_size("n_networks", n_networks), check_size("n_inputs", n_inputs)
    max_factor = check_number("max_factor", max_factor, low=0.0)
    widths = check_widths(widths)
    if embed_in is not None:
        embed_in = check_widths(embed_in)
        if (len(embed_in) != len(widths) or embed_in[0] != widths[0]
                or any(H < h for H, h in zip(embed_in, widths))):
            raise ValueError(f"embed_in must have the same d and depth as widths and no smaller "
                             f"width; got widths {list(widths)}, embed_in {list(embed_in)}")
    k_net, k_x = jax.random.split(key)
    params = init_params(k_net, embed_in or widths, activation=activation, n=n_networks)
    if embed_in is not None and embed_in != widths:
        params = _embed_params(params, widths)
    d = params.widths[0]
    X = sphere_batches(k_x, n_networks, n_inputs, d)
    res, lin, nx = map_networks(_flow_one, params, X,
                                jnp.full((n_networks,), max_factor, dtype=X.dtype))
    verified = verify_float64(params, X, res.x_adv)
    nx = np.asarray(nx)
    flipped = np.asarray(res.flipped)
    return FlowMeasurement(
        widths=tuple(widths),
        rel_distance=np.where(flipped, np.asarray(res.delta_norm) / nx, np.inf),
        rel_linear=np.asarray(lin), rel_path=np.asarray(res.path_length) / nx,
        flipped=flipped, verified64=np.asarray(verified) & flipped,
        status=np.asarray(res.status), steps=np.asarray(res.steps))


def sweep_flow(key: jax.Array, dims: Sequence[int], *, n_networks: int | Sequence[int],
               n_inputs: int, widths: Callable[[int], list[int]] = shrinking_widths,
               embed_in: Callable[[int], list[int]] | None = None,
               **kwargs: Any) -> list[FlowMeasurement]:
    """:func:`measure_flow` for each d in ``dims`` with ``widths(d)`` (default [d, d/4, d/16]).

    ``widths`` is the width rule: :func:`shrinking_widths` (fixed ratios, the default),
    :func:`vanishing_widths` (ratios → 0, Daniely & Shacham's hypothesis), or any
    d ↦ ``[d, h₁, …]``.

    ``n_networks`` may be one count or one per d (fewer networks at the largest d keeps the
    sweep's cost flat). Each d gets its own key ``fold_in(key, d)``. Shows a progress bar.

    Args:
        key: PRNG key. dims: the dimensions d. n_networks: one count, or one per d.
        n_inputs: inputs per network. widths: d ↦ the widths of the networks.
        embed_in: optional d ↦ larger widths to run them at (:func:`measure_flow`'s
            ``embed_in``; e.g. :func:`shrinking_widths` for a :func:`vanishing_widths` sweep
            beside a fixed-ratio one, which then compiles nothing new).
        **kwargs: passed to :func:`measure_flow`.

    Returns:
        One :class:`FlowMeasurement` per d.

    Raises:
        ValueError: for an empty ``dims``, a count list of the wrong length (and whatever
            :func:`measure_flow` raises).
    """
    check_key(key)
    dims = [check_size("d", d) for d in dims]
    if not dims:
        raise ValueError("dims is empty; pass at least one dimension")
    counts = ([n_networks] * len(dims) if isinstance(n_networks, (int, np.integer))
              else list(n_networks))
    if len(counts) != len(dims):
        raise ValueError(f"n_networks needs one count per d: {len(dims)} dims, {len(counts)} counts")
    return [measure_flow(jax.random.fold_in(key, d), widths(d), n_networks=n, n_inputs=n_inputs,
                         embed_in=None if embed_in is None else embed_in(d), **kwargs)
            for d, n in progress(list(zip(dims, counts)), desc="flow over d")]


@dataclasses.dataclass(frozen=True)
class FlowScalingFit:
    """:func:`fit_flow_scaling`: mean ‖δ‖/‖x‖ ≈ C·d^slope.

    Attributes:
        slope: the fitted exponent (the theorem: −1/2). C: the fitted constant.
        slope_se: the standard error of the slope propagated from the network-level standard
            errors of the means (NaN where a mean has no s.e.): with u_i = log d_i − mean,
            se² = Σ u_i² (se_i/mean_i)² / (Σ u_i²)².
    """

    slope: float
    C: float
    slope_se: float = math.nan

    @property
    def C_over_sqrt_2_over_pi(self) -> float:
        """C/√(2/π): 1 for the linearisation's constant."""
        return self.C / SQRT_2_OVER_PI


def fit_flow_scaling(sweep: Sequence[FlowMeasurement]) -> FlowScalingFit:
    """Fit mean ‖δ‖/‖x‖ ≈ C·d^slope over a :func:`sweep_flow` result.

    The mean at each d is over networks (:func:`mini_adv.stats.network_mean` of the
    per-network means over flipped inputs); the fit is :func:`mini_adv.stats.fit_power_law`.

    Args:
        sweep: measurements at two or more distinct d.

    Returns:
        A :class:`FlowScalingFit`.

    Raises:
        ValueError: for fewer than two measurements, or a d where no input flipped.
    """
    dims = [m.d for m in sweep]
    means, rel_se = [], []
    for m in sweep:
        if not m.flipped.any():
            raise ValueError(f"no input flipped at d = {m.d}: no distance to fit there")
        nm = network_mean(np.where(m.flipped, m.rel_distance, np.nan))
        means.append(nm.mean)
        rel_se.append(nm.se / nm.mean if nm.n > 1 else math.nan)
    slope, C = fit_power_law(dims, means)
    u = np.log(np.asarray(dims, float))
    u -= u.mean()
    slope_se = float(math.sqrt(np.sum(u ** 2 * np.asarray(rel_se) ** 2)) / np.sum(u ** 2))
    return FlowScalingFit(slope=slope, C=C, slope_se=slope_se)


@dataclasses.dataclass(frozen=True)
class MethodRow:
    """One row of :func:`compare_methods`.

    Attributes:
        method: the method's name.
        flip_rate: the fraction of inputs flipped.
        sqrt_d_rel_median: the median of √d·‖δ‖/‖x‖ over flipped inputs (``inf`` if none).
        over_linear_median: the median of ‖δ‖/(|f|/‖∇f‖) over flipped inputs (``inf`` if none).
        evaluations: the mean number of gradient (or function) evaluations.
        verified: every flip also holds in float64.
    """

    method: str
    flip_rate: float
    sqrt_d_rel_median: float
    over_linear_median: float
    evaluations: float
    verified: bool


def _compare_one(params: MLPParams, X: jax.Array, U: jax.Array, c: jax.Array, budget: jax.Array,
                 random_budget: jax.Array) -> tuple[Any, ...]:
    """Every method of :func:`compare_methods` on one network (traced settings: one compile).

    ``c`` (C,) step factors; ``budget`` the flow and gradient-ray budget; ``random_budget``
    the random ray's in units of max‖x‖."""
    f, g = value_and_input_grad_kernel(params, X)
    steps = jax.vmap(lambda ci: gradient_step_kernel(params, X, ci, adaptive=True,
                                                     f_clean=f, grad=g))(c)
    flow = gradient_flow_kernel(params, X, budget)
    deepfool = deepfool_kernel(params, X)
    along = ray_flip_kernel(params, X, flip_direction_from(f, g), budget)
    nx = jnp.linalg.norm(X, axis=-1)
    rnd = ray_flip_kernel(params, X, U, random_budget * jnp.max(nx))
    return steps, flow, deepfool, along, rnd, linearized_distance_from(f, g), nx


def compare_methods(key: jax.Array, widths: Sequence[int], *, n_networks: int, n_inputs: int,
                    c_values: Sequence[float] = (1.1, 1.5, 2.0), random_budget: float = 2.0
                    ) -> list[MethodRow]:
    """One gradient step, the flow, DeepFool and rays, on the same networks and inputs.

    Methods (all from :mod:`mini_adv.attacks`, on ``n_networks`` networks through
    :func:`~mini_adv.parallel.map_networks`, compiled once per shape and number of c values):
    ``gradient_step`` with c ∈ ``c_values`` (the book's step factor κ: x′ = x − κ f∇f/‖∇f‖²;
    the rows are named "one step, κ = …"); ``gradient_flow``; ``deepfool``; the first flip
    along the ray −sign(f)∇f; the first flip along a random direction within
    ``random_budget``·‖x‖. The flow and the gradient ray get the budget 2·max‖x‖. For each:
    the fraction flipped (verified in float64), the median of √d·‖δ‖/‖x‖ over flipped
    inputs, the median of ‖δ‖ divided by the linearised distance |f|/‖∇f‖, and the mean
    number of gradient (or function) evaluations.

    Args:
        key: PRNG key. widths: ``[d, h₁, ...]``. n_networks, n_inputs: N networks × n inputs.
        c_values: the adaptive step factors c > 0. random_budget: the random ray's budget
            in units of ‖x‖ (> 0).

    Returns:
        A list of :class:`MethodRow`, one per method.

    Raises:
        ValueError: for invalid widths, counts, step factors, budget or key.
    """
    check_key(key)
    n_networks, n_inputs = check_size("n_networks", n_networks), check_size("n_inputs", n_inputs)
    c_values = [check_number("every c", c, low=0.0) for c in c_values]
    if not c_values:
        raise ValueError("c_values is empty; pass at least one step factor c")
    random_budget = check_number("random_budget", random_budget, low=0.0)
    k_net, k_x, k_u = jax.random.split(key, 3)
    params = init_params(k_net, widths, n=n_networks)
    d = params.widths[0]
    X = sphere_batches(k_x, n_networks, n_inputs, d)
    U = sphere(k_u, n_networks * n_inputs, d, radius=1.0).reshape(X.shape)
    nx = np.linalg.norm(np.asarray(X), axis=-1)
    full = lambda v: jnp.full((n_networks,) + np.shape(v), v, dtype=X.dtype)  # noqa: E731
    steps, flow, deepfool, along, rnd, lin, nx = map_networks(
        _compare_one, params, X, U, full(np.asarray(c_values)), full(2.0 * float(nx.max())),
        full(random_budget))
    results = [(f"one step, κ = {c:g}", jax.tree.map(lambda a, i=i: a[:, i], steps))
               for i, c in enumerate(c_values)]
    results += [("gradient flow", flow), ("DeepFool", deepfool), ("ray along the gradient", along),
                (f"random ray (≤ {random_budget:g}‖x‖)", rnd)]
    return [_row(name, res, params, X, nx, lin, d) for name, res in results]


def _row(name: str, res: AttackResult, params: MLPParams, X: jax.Array, nx: jax.Array,
         lin: jax.Array, d: int) -> MethodRow:
    flipped = np.asarray(res.flipped)
    ok64 = np.asarray(verify_float64(params, X, res.x_adv))
    dn, nx, lin = np.asarray(res.delta_norm), np.asarray(nx), np.asarray(lin)
    rel = (dn / nx)[flipped]
    over = (dn / lin)[flipped]
    return MethodRow(method=name, flip_rate=float(flipped.mean()),
                     sqrt_d_rel_median=math.sqrt(d) * float(np.median(rel)) if rel.size else math.inf,
                     over_linear_median=float(np.median(over)) if over.size else math.inf,
                     evaluations=float(np.mean(np.asarray(res.steps))),
                     verified=bool(np.all(ok64[flipped])))


@struct.dataclass
class FlowGradients:
    """The gradient along the flow's path, for the lemmas of the proof (shapes ``(N, n)``).

    Attributes:
        crossed: the path crossed {f = 0} within the recorded steps.
        time: path length T to the first point past the boundary.
        f0_over_g0: |f(x₀)|/‖∇f(x₀)‖, the linearised distance.
        g_min_ratio: min over the path (up to the crossing) of ‖∇f(x(t))‖/‖∇f(x₀)‖.
        bound: |f(x₀)|/g_min, the flow lemma's upper bound on T (up to one Euler step).
    """

    crossed: np.ndarray
    time: np.ndarray
    f0_over_g0: np.ndarray
    g_min_ratio: np.ndarray
    bound: np.ndarray


def gradient_along_flow(key: jax.Array, widths: Sequence[int], *, n_networks: int,
                        n_inputs: int, n_steps: int = 200) -> FlowGradients:
    """Record the flow path (:func:`~mini_adv.attacks.gradient_flow_path`) from many inputs
    on many networks and measure ‖∇f‖ along it, up to the first point past the boundary.

    This checks the two analytic steps of Daniely & Shacham's proof: ‖∇f‖ stays
    bounded below on the path (g_min_ratio of order 1), and the hitting time obeys the flow
    lemma T ≤ |f(x₀)|/g_min (up to the last Euler step, which overshoots by at most its
    length). Vmapped over inputs, and over networks through
    :func:`~mini_adv.parallel.map_networks`.

    Args:
        key: PRNG key. widths: ``[d, h₁, ...]``. n_networks, n_inputs: N networks × n inputs.
        n_steps: the recorded Euler steps per path.

    Returns:
        A :class:`FlowGradients` with ``(N, n)`` arrays.

    Raises:
        ValueError: for invalid widths, counts or key.
    """
    check_key(key)
    n_networks, n_inputs = check_size("n_networks", n_networks), check_size("n_inputs", n_inputs)
    n_steps = check_size("n_steps", n_steps)
    k_net, k_x = jax.random.split(key)
    params = init_params(k_net, widths, n=n_networks)
    d = params.widths[0]
    X = sphere_batches(k_x, n_networks, n_inputs, d)
    out = map_networks(_along_flow_kernel(n_steps), params, X)
    return FlowGradients(*(np.asarray(a) for a in out))


@functools.lru_cache(maxsize=16)
def _along_flow_kernel(n_steps: int) -> Callable[[MLPParams, jax.Array], tuple[jax.Array, ...]]:
    """The kernel of :func:`gradient_along_flow` for one network and ``n_steps`` (a static size:
    one function object per value, so that map_networks compiles it once per shape; the 16
    most recent values are kept)."""
    def one(p: MLPParams, x: jax.Array) -> tuple[jax.Array, ...]:
        pts, k = gradient_flow_path_kernel(p, x, n_steps)
        f, g = value_and_input_grad_kernel(p, pts)
        gn = jnp.linalg.norm(g, axis=-1)
        upto = jnp.arange(n_steps + 1) < jnp.where(k >= 0, k, n_steps + 1)  # before the crossing
        seg = jnp.linalg.norm(jnp.diff(pts, axis=0), axis=-1)
        time = jnp.sum(jnp.where(jnp.arange(n_steps) < k, seg, 0.0))
        g_min = jnp.min(jnp.where(upto, gn, jnp.inf))
        return k >= 0, time, jnp.abs(f[0]) / gn[0], g_min / gn[0], jnp.abs(f[0]) / g_min

    return jax.vmap(one, in_axes=(None, 0))




@dataclasses.dataclass(frozen=True)
class PlanePanel:
    """One plane of :func:`flow_plane`: coordinates in units of ‖x‖/√d, x at (0, 0).

    Attributes:
        axis_label: the name of the plane's second direction (a LaTeX fragment).
        title: the plane's title.
        a, b: ``(K + 1,)`` the path's coordinates along e₁ = x/‖x‖ and along e₂.
        A, B, F: ``(resolution, resolution)`` the grid's coordinates and f on it.
    """

    axis_label: str
    title: str
    a: np.ndarray
    b: np.ndarray
    A: np.ndarray
    B: np.ndarray
    F: np.ndarray


@dataclasses.dataclass(frozen=True)
class FlowPlane:
    """:func:`flow_plane`: the flow's path from x and the planes it is drawn in.

    Attributes:
        d: the input dimension. n_steps: the recorded Euler steps.
        distance: ‖x(T) − x‖ (or ‖x(end) − x‖ without a crossing), in units of ‖x‖/√d.
        path: the path length, in units of ‖x‖/√d.
        off_plane: the largest distance of the path from the (x, ∇f) plane, same units.
        crossed: the path crossed {f = 0} within ``n_steps`` steps.
        stop: ``"crossed"``, ``"zero gradient"`` (the flow reached ∇f = 0 and cannot move on)
            or ``"steps"`` (it ran out of steps).
        panels: the (x, ∇f(x)) plane, then, with ``with_crossing_plane`` and a crossing, the
            (x, x(T) − x) plane.
    """

    d: int
    n_steps: int
    distance: float
    path: float
    off_plane: float
    crossed: bool
    stop: str
    panels: tuple[PlanePanel, ...]


def flow_plane(net: Network, x: jax.Array, *, n_steps: int = 400, resolution: int = 161,
               with_crossing_plane: bool = False) -> FlowPlane:
    """The flow's path from x, projected on the plane spanned by x and ∇f(x), and f there.

    Coordinates (a, b) are the components along e₁ = x/‖x‖ and e₂ (the unit part of ∇f(x)
    orthogonal to x, oriented so that the path starts upwards), shifted so that x sits at
    (0, 0) and scaled by ‖x‖/√d (so 1 unit is the predicted order of the flip distance). The
    path is the Euler path of :func:`~mini_adv.attacks.gradient_flow_path`, which leaves the
    plane by ``off_plane``. With ``with_crossing_plane`` (and a crossing) a second plane is
    spanned by x and the displacement x(T) − x to the first point past the boundary: it
    contains that point, so there the path ends on the boundary. Each plane's grid
    (:func:`mini_adv.rays.plane_slice`) covers b ∈ [−R/5, R] and a ∈ [−R/2, R/2] around x, with
    R = max(1.3 max|b|, 2.6 max|a|, 0.5): the path runs upwards and barely sideways.

    Args:
        net: a network. x: ``(d,)`` one input.
        n_steps: recorded Euler steps. resolution: grid points per axis.
        with_crossing_plane: add the plane of x and x(T) − x.

    Returns:
        A :class:`FlowPlane`.

    Raises:
        ValueError: for a shape mismatch, non-finite or zero input, or bad sizes.
    """
    params = as_params(net)
    x = check_batch(params, jnp.asarray(x)[None], "x")[0]
    n_steps, resolution = check_size("n_steps", n_steps), check_size("resolution", resolution)
    d = x.shape[0]
    nx = float(jnp.linalg.norm(x))
    if nx == 0.0:
        raise ValueError("x is the zero vector: the plane of x and ∇f(x) is not defined")
    unit = nx / math.sqrt(d)
    f0, g0 = value_and_input_grad_kernel(params, x[None])
    pts, k = gradient_flow_path(params, x, n_steps=n_steps)
    end = k if k >= 0 else pts.shape[0] - 1
    path = np.asarray(pts[: end + 1] - x)
    e1 = np.asarray(x) / nx

    def basis(v: np.ndarray) -> np.ndarray:
        w = v - np.dot(v, e1) * e1
        e2 = w / np.linalg.norm(w)
        return e2 if np.dot(path[min(1, end)], e2) >= 0 else -e2  # the flow starts upwards

    planes = [(basis(np.asarray(g0[0])), r"$\nabla f(x)_\perp$", r"plane of $x$ and $\nabla f(x)$")]
    if with_crossing_plane and k > 0:
        planes.append((basis(path[-1]), r"$(x(T) - x)_\perp$", r"plane of $x$ and $x(T) - x$"))
    e2g = planes[0][0]
    off = np.linalg.norm(path - np.outer(path @ e1, e1) - np.outer(path @ e2g, e2g), axis=1)
    lengths = np.linalg.norm(np.diff(path, axis=0), axis=1)
    panels = []
    for e2, name, title in planes:
        a, b = path @ e1 / unit, path @ e2 / unit
        # the path runs upwards and barely sideways: b in [−R/5, R], a in [−R/2, R/2]
        reach = max(1.3 * float(np.max(np.abs(b))), 2.6 * float(np.max(np.abs(a))), 0.5)
        r = reach * unit / nx
        A, B, F = plane_slice(params, x, jnp.asarray(e2),
                              extent=(1 - r / 2, 1 + r / 2, -r / 5, r),
                              resolution=resolution)  # the same e₁, e₂ as here
        panels.append(PlanePanel(axis_label=name, title=title, a=a, b=b,
                                 A=(A - 1.0) * nx / unit, B=B * nx / unit, F=F))
    if k >= 0:
        stop = "crossed"
    else:  # why: a region where ∇f = 0 (the flow cannot move on) or too few steps
        g_end = value_and_input_grad_kernel(params, pts[-1][None])[1]
        stop = "zero gradient" if float(jnp.linalg.norm(g_end)) == 0 else "steps"
    return FlowPlane(d=d, n_steps=n_steps, distance=float(np.linalg.norm(path[-1])) / unit,
                     path=float(lengths.sum()) / unit, off_plane=float(off.max()) / unit,
                     crossed=k >= 0, stop=stop, panels=tuple(panels))


@dataclasses.dataclass(frozen=True)
class FlowPaths:
    """:func:`flow_paths`: the flow's paths from ``n`` inputs on each of ``N`` networks.

    Coordinates are in units of ‖x‖/√d (the predicted order of the flip distance), each path
    in its own plane of x and ∇f(x): ``a`` along e₁ = x/‖x‖, ``b`` along e₂ = the unit part of
    −sign(f(x))∇f(x) orthogonal to x (so every path starts upwards), x at (0, 0). Arrays have
    shape ``(N, n)``, or ``(N, n, K + 1)`` for the paths (NaN after the first point past the
    boundary).

    Attributes:
        widths: the networks' widths. params: the ``N`` stacked networks. X: ``(N, n, d)`` inputs.
        a, b: the path's coordinates. crossed: the path crossed {f = 0} within K steps.
        distance: √d · ‖x(T) − x‖/‖x‖ at the first point past the boundary (NaN if none).
        path: √d · (path length)/‖x‖ up to that point. off_plane: the largest distance of the
            path from its (x, ∇f(x)) plane, same units.
        linear: √d · |f(x)|/(‖∇f(x)‖‖x‖) = √d |cos∠(x, ∇f(x))|, the linearised distance.
    """

    widths: tuple[int, ...]
    params: MLPParams
    X: np.ndarray
    a: np.ndarray
    b: np.ndarray
    crossed: np.ndarray
    distance: np.ndarray
    path: np.ndarray
    off_plane: np.ndarray
    linear: np.ndarray

    @property
    def d(self) -> int:
        return self.widths[0]

    def typical(self) -> tuple[int, int]:
        """``(network, input)`` of a typical path: among the paths that crossed, the one whose
        excess length path/distance − 1 is the median (the lower median for an even count).

        Raises:
            ValueError: if no path crossed.
        """
        if not self.crossed.any():
            raise ValueError("no path crossed {f = 0}: there is no typical crossing path")
        excess = np.where(self.crossed, self.path / self.distance, np.nan)
        order = np.argsort(excess, axis=None)[: int(self.crossed.sum())]  # NaN sort last
        i, j = np.unravel_index(order[(order.size - 1) // 2], excess.shape)
        return int(i), int(j)


@functools.lru_cache(maxsize=16)
def _paths_kernel(n_steps: int) -> Callable[[MLPParams, jax.Array], tuple[jax.Array, ...]]:
    """The kernel of :func:`flow_paths` for one network and ``n_steps`` (one function object
    per value, so that map_networks compiles it once per shape)."""
    def one(p: MLPParams, x: jax.Array) -> tuple[jax.Array, ...]:
        pts, k = gradient_flow_path_kernel(p, x, n_steps)
        f0, g0 = value_and_input_grad_kernel(p, x[None])
        d = x.shape[0]
        nx = jnp.linalg.norm(x)
        unit = nx / math.sqrt(d)
        e1 = x / nx
        g = g0[0]
        perp = g - jnp.dot(g, e1) * e1
        e2 = -jnp.sign(f0[0]) * perp / jnp.linalg.norm(perp)  # the flow starts along +e2
        D = pts - x
        a, b = D @ e1, D @ e2
        off = jnp.linalg.norm(D - a[:, None] * e1 - b[:, None] * e2, axis=-1)
        end = jnp.where(k >= 0, k, n_steps)
        upto = jnp.arange(n_steps + 1) <= end
        seg = jnp.linalg.norm(jnp.diff(pts, axis=0), axis=-1)
        path = jnp.sum(jnp.where(jnp.arange(n_steps) < end, seg, 0.0))
        crossed = k >= 0
        dist = jnp.where(crossed, jnp.linalg.norm(D[end]), jnp.nan)
        lin = jnp.abs(f0[0]) / (jnp.linalg.norm(g) * nx)
        return (jnp.where(upto, a / unit, jnp.nan), jnp.where(upto, b / unit, jnp.nan), crossed,
                dist / unit, path / unit, jnp.max(jnp.where(upto, off, 0.0)) / unit,
                lin * math.sqrt(d))

    return jax.vmap(one, in_axes=(None, 0))


def flow_paths(key: jax.Array, widths: Sequence[int], *, n_networks: int, n_inputs: int,
               n_steps: int = 200) -> FlowPaths:
    """The flow's Euler paths (:func:`~mini_adv.attacks.gradient_flow_path`) from ``n_inputs``
    inputs on each of ``n_networks`` fresh networks, each path projected on its own plane of
    x and ∇f(x), in units of ‖x‖/√d.

    In these units the linear heuristic (chapter 1) puts the crossing at height
    √d|f|/(‖∇f‖‖x‖) ≈ |Z|, Z ~ N(0, 1), at every d (Daniely & Shacham 2020; the distance is
    O_P(‖x‖/√d)): a picture that does not change with d. Inputs are uniform on the sphere of
    radius √d, independent of the weights; networks from :func:`~mini_adv.nets.init_params`.

    Args:
        key: PRNG key. widths: ``[d, h₁, ...]``. n_networks, n_inputs: N networks × n inputs.
        n_steps: K recorded Euler steps per path (a nearly linear f is crossed in about 55).

    Returns:
        A :class:`FlowPaths`.

    Raises:
        ValueError: for invalid widths, counts or key.
    """
    check_key(key)
    n_networks, n_inputs = check_size("n_networks", n_networks), check_size("n_inputs", n_inputs)
    n_steps = check_size("n_steps", n_steps)
    widths = check_widths(widths)
    k_net, k_x = jax.random.split(key)
    params = init_params(k_net, widths, n=n_networks)
    X = sphere_batches(k_x, n_networks, n_inputs, params.widths[0])
    out = [np.asarray(v) for v in map_networks(_paths_kernel(n_steps), params, X)]
    return FlowPaths(tuple(widths), params, np.asarray(X), *out)

"""Attacks: ways of moving x to the other side of the decision boundary {f = 0}.

Every attack takes a network (a :class:`~mini_adv.nets.RandomMLP`, or its pure form
:class:`~mini_adv.nets.MLPParams`) and a batch ``X`` of shape ``(B, d)``, runs as one jitted
kernel with its loops inside ``lax.while_loop``, and returns an :class:`AttackResult`.
A flip is counted only when the network, re-evaluated at ``x_adv``, has the opposite sign:
f(x) · f(x_adv) < 0. Points where nothing can be done are reported by :class:`Status`,
never as successes and never as NaN.

================================  =====================================================
:func:`ray_flip_distance`         first sign change along given rays (chapter 1)
:func:`gradient_ray_flip`         first sign change along the gradient ray, in one kernel
:func:`gradient_step`             one step along ∇f (Bubeck et al.; Montanari & Wu)
:func:`gradient_flow`             the normalised gradient flow (Daniely & Shacham)
:func:`gradient_flow_path`        the same flow's path from one input, for figures
:func:`deepfool`                  binary ℓ2 DeepFool (Moosavi-Dezfooli et al.), a baseline
:func:`pgd_l2`                    ℓ2 projected gradient ascent (Madry et al.), a baseline
================================  =====================================================

Each public function checks its input and calls a pure kernel ``*_kernel(params, X, ...)``
that has no checks; vmap the kernels over stacked networks (``init_params(..., n=N)``).
"""

from __future__ import annotations

import enum
from functools import partial

import jax
import jax.numpy as jnp
from flax import struct

from mini_adv.gradients import value_and_input_grad_kernel
from mini_adv.activations import get_activation
from mini_adv.nets import MLPParams, Network, apply, as_params, check_batch, check_finite


class Status(enum.IntEnum):
    """Outcome of an attack for one input (stored per row in ``AttackResult.status``)."""

    FLIPPED = 0
    """f(x_adv) has the opposite sign of f(x) (verified by re-evaluation)."""
    NO_FLIP = 1
    """No sign change within the budget (distance, steps)."""
    ZERO_DIRECTION = 2
    """Nothing to follow: the direction is zero (e.g. ∇f = 0, a dead network or dead region)."""
    ZERO_OUTPUT = 3
    """f(x) = 0 exactly: x is on the boundary and has no sign to flip."""


@struct.dataclass
class AttackResult:
    """Per-input outcome of an attack; every field has leading axis B.

    Attributes:
        x_adv: ``(B, d)`` the perturbed inputs (equal to ``x`` where nothing was found,
            except for :func:`gradient_step` and :func:`pgd_l2`, which return their
            iterate whether it flips or not).
        delta_norm: ``(B,)`` ‖x_adv − x‖, measured on the returned points.
        flipped: ``(B,)`` bool, f(x) · f(x_adv) < 0 re-evaluated at ``x_adv``.
        f_clean: ``(B,)`` f(x).
        f_adv: ``(B,)`` f(x_adv).
        status: ``(B,)`` int, a :class:`Status` code.
        path_length: ``(B,)`` length of the path the attack travelled to ``x_adv`` (equals
            ``delta_norm`` for straight-line attacks; longer for a curved flow).
        steps: ``(B,)`` int, iterations of the attack's main loop spent on this row
            (gradient evaluations for the gradient methods, function evaluations along the
            ray for :func:`ray_flip_distance`).
    """

    x_adv: jax.Array
    delta_norm: jax.Array
    flipped: jax.Array
    f_clean: jax.Array
    f_adv: jax.Array
    status: jax.Array
    path_length: jax.Array
    steps: jax.Array

    @property
    def distance(self) -> jax.Array:
        """‖x_adv − x‖ where flipped, ``inf`` elsewhere (the flip distance, unbounded if none)."""
        return jnp.where(self.flipped, self.delta_norm, jnp.inf)

    @property
    def success_rate(self) -> float:
        """Fraction of inputs whose sign was flipped (verified)."""
        return float(jnp.mean(self.flipped))

    def counts(self) -> dict[str, int]:
        """How many inputs ended in each :class:`Status` (a plain dict, for reports)."""
        return {s.name: int(jnp.sum(self.status == s)) for s in Status}


def finalize(params: MLPParams, X: jax.Array, x_adv: jax.Array, f_clean: jax.Array,
             usable: jax.Array, no_direction: jax.Array, path_length: jax.Array | None = None,
             steps: jax.Array | None = None, f_adv: jax.Array | None = None) -> AttackResult:
    """Re-evaluate f at ``x_adv`` and build the verified :class:`AttackResult` (jit-able).

    ``usable`` marks rows the attack could work on; ``no_direction`` rows with nothing to
    follow. ``flipped`` comes from re-evaluation only, never from the attack's own claim:
    ``f_adv`` may be passed only when the caller has evaluated the network
    (:func:`~mini_adv.nets.apply`) at ``x_adv`` itself (f(x) where x_adv = x), to save a pass.
    ``path_length`` defaults to ‖x_adv − x‖ and ``steps`` to 1.
    """
    if f_adv is None:
        f_adv = apply(params, x_adv)
    flipped = (f_clean * f_adv < 0) & usable
    status = jnp.where(
        flipped, Status.FLIPPED,
        jnp.where(f_clean == 0, Status.ZERO_OUTPUT,
                  jnp.where(no_direction, Status.ZERO_DIRECTION, Status.NO_FLIP)))
    delta_norm = jnp.linalg.norm(x_adv - X, axis=-1)
    return AttackResult(
        x_adv=x_adv, delta_norm=delta_norm, flipped=flipped, f_clean=f_clean, f_adv=f_adv,
        status=status.astype(jnp.int32),
        path_length=delta_norm if path_length is None else path_length,
        steps=(jnp.ones(X.shape[0], jnp.int32) if steps is None else steps.astype(jnp.int32)))


def verify_float64(net: Network, X: jax.Array, x_adv: jax.Array) -> jax.Array:
    """Re-check flips in float64: f(x) · f(x_adv) < 0 with the network evaluated in float64.

    An independent check of an attack's float32 claim (the inputs and weights are cast to
    float64, so this is the sign of the exact network at the returned float32 points, up
    to float64 rounding). Works for one network (``X (B, d)``) and for a stack of N
    networks (``X (N, B, d)``). Returns a bool array of shape ``X.shape[:-1]``.
    """
    from mini_adv.runtime import float64

    params = as_params(net)
    with float64():
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        X64, A64 = jnp.asarray(X, jnp.float64), jnp.asarray(x_adv, jnp.float64)
        f = apply if params.num_networks is None else jax.vmap(apply)
        return jnp.asarray(f(p64, X64) * f(p64, A64) < 0)


def _unit(G: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Rows of G divided by their norms (zero rows stay zero), and the norms."""
    n = jnp.linalg.norm(G, axis=-1)
    return G / jnp.where(n > 0, n, 1.0)[:, None], n


# --------------------------------------------------------------------------------------
# The network seen from its first layer
# --------------------------------------------------------------------------------------
#
# Every search below moves x in straight lines or along ∇f, and the first layer
# z₁ = x K₁ + b₁ is affine in x: along a ray x + t u it is z₁(x) + t (u K₁), and a step
# x → x + c ∇f moves it by c ∇f K₁. So the searches carry z₁ (B, h₁) and pay for the first
# layer (d·h₁ multiply-adds a row, the largest layer when the widths shrink) only when a
# point must be produced in input space. The network is then evaluated from z₁ by
# :func:`_tail`, and its input gradient is ∇f = g₁ K₁ᵀ with g₁ = ∂f/∂z₁ from one
# backward pass through the tail.

def _first_layer(params: MLPParams, X: jax.Array) -> jax.Array:
    """z₁ = X K₁ + b₁ (the first pre-activation), shape ``X.shape[:-1] + (h₁,)``."""
    z = X @ params.kernels[0]
    return z if params.biases is None else z + params.biases[0]


def _tail(params: MLPParams, Z: jax.Array) -> jax.Array:
    """f from the first pre-activation: aᵀ σ(⋯ σ(σ(Z) K₂ + b₂) ⋯); ``Z (..., h₁)`` → ``(...)``.

    ``_tail(params, _first_layer(params, X))`` is :func:`~mini_adv.nets.apply` (the same
    operations in the same order).
    """
    sigma = get_activation(params.activation)
    h = sigma(Z)
    for i, k in enumerate(params.kernels[1:], start=1):
        h = h @ k
        if params.biases is not None:
            h = h + params.biases[i]
        h = sigma(h)
    return h @ params.readout


def _tail_value_and_grad(params: MLPParams, Z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(f, g₁)`` with g₁ = ∂f/∂z₁ for every row of ``Z (B, h₁)``; ∇ₓf = g₁ K₁ᵀ."""
    f, vjp = jax.vjp(lambda z: _tail(params, z), Z)
    return f, vjp(jnp.ones_like(f))[0]


class _Chart:
    """Coordinates for the iterates of DeepFool and the gradient flow (built at trace time).

    An iterate is x = X + lift(w). Each step adds a multiple of ∇f(x) = g₁ K₁ᵀ, so
    :meth:`direction` returns, for g₁, the step in chart coordinates ``v``, its image
    ``u`` = ∇f K₁ in first-layer coordinates (so z₁ moves by the same multiple of u), and
    ‖∇f‖. Two charts, chosen by the static shapes:

    * *input* (h₁ > d/2): w lives in ℝᵈ, v = ∇f = g₁ K₁ᵀ, u = ∇f K₁: 2·d·h₁ multiply-adds
      a row and step, what a forward and a backward pass through the first layer cost.
    * *first layer* (h₁ ≤ d/2): w lives in ℝ^{h₁} with x = X + w K₁ᵀ, v = g₁, u = g₁ M
      with the Gram matrix M = K₁ᵀ K₁ (d·h₁² once per call), and ‖∇f‖² = ⟨g₁, u⟩: h₁²
      multiply-adds a row and step instead of 2·d·h₁. Exact up to float rounding, with a
      relative error of about eps·cond(M) in ‖∇f‖; for a Gaussian K₁ with h₁ ≤ d/2,
      cond(M) ≤ ((1 + √½)/(1 − √½))² ≈ 34 (Marchenko–Pastur edges), while a square K₁
      (h₁ = d) has cond(M) of order d² and visibly perturbs long paths such as the flow's,
      hence the threshold. ‖∇f‖ is exactly 0 where g₁ = 0 or K₁ = 0.
    """

    def __init__(self, params: MLPParams):
        self.K = params.kernels[0]
        d, h1 = self.K.shape
        self.M = self.K.T @ self.K if 2 * h1 <= d else None
        self.size = d if self.M is None else h1
        """Dimension of the chart coordinates w."""

    def direction(self, g1: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        if self.M is None:
            G = g1 @ self.K.T
            return G, G @ self.K, jnp.linalg.norm(G, axis=-1)
        u = g1 @ self.M
        return g1, u, jnp.sqrt(jnp.maximum(jnp.sum(g1 * u, axis=-1), 0.0))

    def lift(self, w: jax.Array) -> jax.Array:
        """x − X for chart coordinates w."""
        return w if self.M is None else w @ self.K.T

    def image(self, w: jax.Array) -> jax.Array:
        """(x − X) K₁, the move of the first layer, for chart coordinates w: w K₁ or w M."""
        return w @ (self.K if self.M is None else self.M)


# --------------------------------------------------------------------------------------
# Root finding along a segment: bracketing grid and safeguarded secant
# --------------------------------------------------------------------------------------

def _root_on_line(params: MLPParams, zA: jax.Array, zD: jax.Array, s0: jax.Array,
                  g0: jax.Array, ts: jax.Array, walking: jax.Array, tol: jax.Array, rtol: float,
                  margin0: jax.Array, margin1: jax.Array, max_iter: int, width: int = 4):
    """First point along the line z₁ = zA + t·zD (t ≥ 0) where s₀·f is clearly negative,

        t* = inf{ t : g̃(t) < 0 },   g̃(t) = s₀·f(zA + t·zD) + m(t),   m(t) = margin0 + margin1·t,

    to width max(tol, rtol·hi). Within a few ulps of the boundary the sign of f is rounding
    noise (two compilations of f can disagree there by about eps·‖∇f‖·‖x‖): callers pass
    m(t) = 4·eps·‖∇f(x)‖·(‖x‖ + t), a bound of 4·eps·‖∇f‖·‖x + t u‖ while f is no steeper
    at the crossing than at x, so that the far end of the bracket is almost always a sign
    change that any re-evaluation reproduces and needs no confirmation pass (the search
    finds the first sign change beyond that band, about 4·eps·‖x‖ past the first sign
    change of f itself); callers re-evaluate it in input space and move the rare
    disagreeing row outwards (:func:`_push_outwards`).

    One loop in which every row is in one of two phases, so the rows share one batched
    pass through the layers after the first (``width`` points a row and iteration):

    * *walk* (rows in ``walking``): the next ``width`` points of the grid ``ts (K,)`` (t₀ < t₁
      < ⋯), until the first t_k with g̃(t_k) < 0; the bracket is then [t_{k−1}, t_k] (t₋₁ = 0
      with g̃(0) = ``g0`` + margin0), and the row searches. A row that reaches the end of the
      grid without a sign change is done, not found.
    * *search*: probes at t_s ∓ τ around the secant (regula falsi) point
      t_s = lo + (hi − lo)·g̃(lo)/(g̃(lo) − g̃(hi)), with 2τ just below the target width, and
      at the thirds of [lo, hi]; the new bracket is the first sub-interval of
      [lo, p₁, …, p₄, hi] whose ends differ in sign. Along a line f of a ReLU network is
      piecewise linear with few kinks on a short bracket, so the secant point is usually
      exact and the probes around it end the search at once; the thirds make the bracket
      shrink at least threefold an iteration whatever f does (bisection halves it).

    Returns:
        ``(hi, found, evaluations per row)``.
    """
    B = zA.shape[0]
    K = ts.shape[0]
    j = jnp.arange(width)
    WALK, SEARCH, FOUND, NONE = 0, 1, 2, 3

    def probes(lo, hi, g_lo, g_hi):
        """Four sorted probes of [lo, hi]: the secant point ∓ τ and the thirds."""
        w = hi - lo
        denom = g_lo - g_hi
        frac = jnp.clip(jnp.where(denom > 0, g_lo / jnp.where(denom > 0, denom, 1.0), 0.5),
                        0.0, 1.0)
        ts_ = lo + w * frac
        tau = 0.45 * jnp.maximum(tol, rtol * ts_)
        a, b = jnp.maximum(ts_ - tau, lo), jnp.minimum(ts_ + tau, hi)
        c, e = lo + w / 3, lo + 2 * w / 3
        return jnp.stack([jnp.minimum(a, c), jnp.minimum(jnp.maximum(a, c), jnp.minimum(b, e)),
                          jnp.maximum(jnp.maximum(a, c), jnp.minimum(b, e)), jnp.maximum(b, e)],
                         axis=1)

    def cond(st):
        return (st[0] < max_iter) & jnp.any(st[1] < FOUND)

    def body(st):
        i, phase, k, lo, hi, g_lo, g_hi, n = st
        walk, search = phase == WALK, phase == SEARCH
        idx = k[:, None] + j[None, :]
        P = jnp.where(walk[:, None], ts[jnp.minimum(idx, K - 1)], probes(lo, hi, g_lo, g_hi))
        g = (s0[:, None] * _tail(params, zA[:, None, :] + P[:, :, None] * zD[:, None, :])
             + margin0[:, None] + margin1[:, None] * P)
        # the first sub-interval of [lo, p₁, …, p₄, hi] whose ends differ in sign: its right
        # end is the leftmost point with g̃ < 0 (hi if none), its left end the point before;
        # both are read from Q = [lo, p₁, …, p₄] (and their g̃ values) in one gather
        opp = (g < 0) & ((idx < K) | ~walk[:, None])
        hit = jnp.any(opp, axis=1)
        first = jnp.argmax(opp, axis=1)               # the leftmost point with g̃ < 0, if hit
        left = jnp.where(hit, first, width)           # no sign change: the last probe
        # a walking row without a sign change moves on to its last valid grid point
        left = jnp.where(walk & ~hit, jnp.clip(K - 1 - k, 0, width - 1) + 1, left)
        Q = jnp.stack([jnp.concatenate([lo[:, None], P], axis=1),
                       jnp.concatenate([g_lo[:, None], g], axis=1)], axis=-1)
        ends = jnp.take_along_axis(Q, jnp.stack([left, first + 1], axis=1)[:, :, None], axis=1)
        move = walk | search
        lo, g_lo = jnp.where(move, ends[:, 0, 0], lo), jnp.where(move, ends[:, 0, 1], g_lo)
        hi, g_hi = jnp.where(move & hit, ends[:, 1, 0], hi), jnp.where(move & hit, ends[:, 1, 1], g_hi)
        k = k + width * walk
        narrow = hi - lo <= jnp.maximum(tol, rtol * hi)
        phase = jnp.where(search | (walk & hit), jnp.where(narrow, FOUND, SEARCH), phase)
        phase = jnp.where(walk & ~hit, jnp.where(k >= K, NONE, WALK), phase)
        return i + 1, phase, k, lo, hi, g_lo, g_hi, n + width * move

    zeros = jnp.zeros((B,), jnp.int32)
    fzeros = jnp.zeros((B,), zA.dtype)
    init = (jnp.asarray(0), jnp.where(walking, WALK, NONE), zeros, fzeros,
            jnp.full((B,), ts[-1], zA.dtype), g0 + margin0, fzeros, zeros)
    _, phase, _, _, hi, _, _, n = jax.lax.while_loop(cond, body, init)
    return hi, phase == FOUND, n


def _push_outwards(params: MLPParams, X: jax.Array, U: jax.Array, t: jax.Array, f_end: jax.Array,
                   f0: jax.Array, pending: jax.Array, t_max: jax.Array, step0: jax.Array,
                   max_push: int = 40) -> tuple[jax.Array, jax.Array]:
    """Move crossings that the input space does not confirm outwards until it does.

    A search on the first layer's line z₁ = zA + t·zD evaluates f through different float
    operations than the network at the point X + t·U itself. Within a few ulps of {f = 0}
    (beyond the rounding band of ‖∇f(x)‖ at the start when f is steeper at the crossing) the
    two can disagree in sign, and the re-evaluation, which decides ``flipped``, says "not
    across". For such ``pending`` rows (rare: one point in 240 in a chapter-5 sweep), t
    moves outwards along the unit rows ``U`` in doubling steps ``step0``·2ᵏ, never past
    ``t_max``, until f(X + t·U) has the opposite sign of ``f0``; a loop of zero iterations
    when no row is pending. Returns ``(t, f(X + t·U))``.
    """
    def cond(st):
        i, _, _, pend = st
        return (i < max_push) & jnp.any(pend)

    def body(st):
        i, t, f, pend = st
        t_new = jnp.where(pend, jnp.minimum(t + step0 * 2.0 ** i, t_max), t)
        f_new = apply(params, X + t_new[:, None] * U)
        f = jnp.where(pend, f_new, f)
        pend = pend & (f_new * f0 >= 0) & (t_new < t_max)
        return i + 1, t_new, f, pend

    _, t, f_end, _ = jax.lax.while_loop(cond, body, (0, t, f_end, pending))
    return t, f_end


# --------------------------------------------------------------------------------------
# Ray flip distance (chapter 1)
# --------------------------------------------------------------------------------------

@partial(jax.jit, static_argnames=("grid_size", "max_bisection", "grid_chunk"))
def ray_flip_kernel(params: MLPParams, X: jax.Array, U: jax.Array, max_distance: jax.Array,
                    rtol: float = 1e-6, min_fraction: float = 1e-4, grid_size: int = 64,
                    max_bisection: int = 60, f_clean: jax.Array | None = None,
                    grad_norm: jax.Array | None = None, grid_chunk: int = 4) -> AttackResult:
    """Pure kernel of :func:`ray_flip_distance` (no input checks; vmap it over networks).

    ``f_clean`` (B,) and ``grad_norm`` (B,) = ‖∇f(x)‖ may be passed when the caller has them
    already; otherwise they are computed here. ``grid_chunk`` points a row are evaluated per
    pass of :func:`_root_on_line` (grid points, then search probes); the loop is capped at
    ``grid_size + 2·max_bisection`` passes (the search shrinks a bracket at least threefold a
    pass, so the cap is never reached in practice).
    """
    U, unorm = _unit(U)
    zA, zD = _first_layer(params, X), U @ params.kernels[0]
    if grad_norm is None:
        f, g1 = _tail_value_and_grad(params, zA)
        grad_norm = jnp.linalg.norm(g1 @ params.kernels[0].T, axis=-1)
    else:
        f = _tail(params, zA) if f_clean is None else f_clean
    f0 = f if f_clean is None else f_clean
    gnorm = grad_norm
    return _ray_search(params, X, U, zA, zD, f0, gnorm, unorm > 0, max_distance, rtol,
                       min_fraction, grid_size, max_bisection, grid_chunk)


def _ray_search(params: MLPParams, X: jax.Array, U: jax.Array, zA: jax.Array, zD: jax.Array,
                f0: jax.Array, gnorm: jax.Array, has_dir: jax.Array, max_distance: jax.Array,
                rtol: float, min_fraction: float, grid_size: int, max_bisection: int,
                grid_chunk: int) -> AttackResult:
    """The ray search of :func:`ray_flip_distance` along unit rows ``U``, given the first
    layer at the start (``zA`` = X K₁ + b₁) and along the ray (``zD`` = U K₁)."""
    s0 = jnp.sign(f0)
    usable = has_dir & (f0 != 0)
    ts = max_distance * jnp.geomspace(min_fraction, 1.0, grid_size)

    # 1.–2. Walk a geometric grid t_k (t_0 tiny, t_K = budget) until s₀f is clearly
    # negative (beyond the rounding band 4·eps·‖∇f(x)‖·‖x + t u‖), then shrink that bracket
    # to relative width rtol (secant search on the first layer's line).
    xnorm = jnp.linalg.norm(X, axis=-1)
    eps = jnp.finfo(X.dtype).eps
    hi, found, n_line = _root_on_line(
        params, zA, zD, s0, jnp.abs(f0), ts.astype(X.dtype), usable, eps * xnorm, rtol,
        4 * eps * gnorm * xnorm, 4 * eps * gnorm, grid_size + 2 * max_bisection, grid_chunk)
    # 3. Verify on the returned array: the network itself, evaluated there (a crossing that
    # the input space does not confirm moves outwards until it does).
    f_end = apply(params, X + hi[:, None] * U)
    hi, f_end = _push_outwards(params, X, U, hi, f_end, f0, found & (f_end * f0 >= 0),
                               max_distance, jnp.maximum(rtol * hi, eps * xnorm))
    x_end = X + hi[:, None] * U
    ok = found & (f_end * f0 < 0)
    return finalize(params, X, jnp.where(ok[:, None], x_end, X), f0, usable, ~has_dir,
                    steps=n_line + 1, f_adv=jnp.where(ok, f_end, f0))


def _check_positive(name: str, value: object, *, integer: bool = False, minimum: float = 0.0,
                    strict: bool = True) -> None:
    ok_type = (isinstance(value, int) and not isinstance(value, bool)) if integer else (
        isinstance(value, (int, float)) and not isinstance(value, bool))
    if not ok_type or not (value > minimum if strict else value >= minimum) or value == float("inf") \
            or value != value:
        kind = "an integer" if integer else "a finite number"
        rel = ">" if strict else "≥"
        raise ValueError(f"{name} must be {kind} {rel} {minimum:g}; got {value!r}")


def _check_flow_settings(step_fraction: object, min_step: object) -> None:
    """Both step settings of the normalised flow must lie in (0, 1]."""
    for name, value in (("step_fraction", step_fraction), ("min_step", min_step)):
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1):
            raise ValueError(f"{name} must lie in (0, 1]; got {value!r}")


def ray_flip_distance(net: Network, X: jax.Array, directions: jax.Array, *,
                      max_distance: float, rtol: float = 1e-6, grid_size: int = 64
                      ) -> AttackResult:
    """Distance to the first sign change of f along each ray t ↦ x + t u, 0 < t ≤ max_distance.

        t*(x, u) = inf{ t ∈ (0, T] : f(x) · f(x + t u/‖u‖) < 0 }

    Algorithm: walk a geometric grid t_k = T · r^{k−K} (r > 1, from 10⁻⁴T to T) until the
    sign changes, which brackets the first crossing (up to crossings closer than one grid
    step), then shrink the bracket by a safeguarded secant search to width
    max(``rtol``·t*, eps·‖x‖) (relative to the crossing itself, however close to x it
    lies, down to the float resolution of the points): f is piecewise linear along the
    ray, so the secant point is usually exact, and the search takes 1.6 batched passes of
    four points on average, at most 4, along the gradient rays of the reference network of
    ``benchmarks/run.py`` (1024 inputs), where bisection takes about 17 sequential
    evaluations (:func:`_root_on_line`). Points on the ray are evaluated from the first
    layer's line z₁(x) + t·(uK₁), so that each costs only the layers after the first.
    A sign change counts only beyond the rounding band: f(x + tu) must have the opposite
    sign of f(x) with |f| > 4·eps·‖∇f(x)‖·(‖x‖ + t) (two compilations of f can disagree by
    about eps·‖∇f‖·‖x‖ near the boundary), so t* is the first such point, about 4·eps·‖x‖
    beyond the first sign change of f itself. ``x_adv`` is the far end of the final
    bracket, re-evaluated on the returned array; where that re-evaluation disagrees (f
    steeper at the crossing than at x, a rare case) the point moves outwards in doubling
    steps from the target width until it agrees, so every reported flip is a sign change
    of the network itself at the returned point.

    This is the measurement behind chapter 1: along the gradient direction the distance is
    about |f(x)|/‖∇f(x)‖ ≈ ‖x‖/√d, along a random direction it is √d times larger or
    infinite (Daniely & Shacham 2020; Bubeck et al. 2021).

    Args:
        net: a :class:`~mini_adv.nets.RandomMLP` or :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs.
        directions: ``(B, d)`` ray directions (normalised here). A zero row is reported with
            status ``ZERO_DIRECTION``.
        max_distance: the budget T > 0.
        rtol: width of the final bracket relative to its far end.
        grid_size: number of grid points K ≥ 2 of the bracketing walk.

    Returns:
        :class:`AttackResult`; ``result.distance`` is t* where flipped and ``inf`` where the
        ray does not change sign within T.

    Raises:
        ValueError: for shape mismatches, NaN/inf in ``X`` or ``directions``, a non-positive
            or non-finite ``max_distance``, ``rtol`` outside (0, 1) or ``grid_size`` < 2.
    """
    params = as_params(net)
    X = check_batch(params, X)
    U = jnp.asarray(directions)
    if U.shape != X.shape:
        raise ValueError(f"directions must have the shape of X {tuple(X.shape)}; got {tuple(U.shape)}")
    check_finite("directions", U)
    _check_positive("max_distance", max_distance)
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must lie in (0, 1), got {rtol!r}")
    _check_positive("grid_size", grid_size, integer=True, minimum=2, strict=False)
    return ray_flip_kernel(params, X, U, jnp.asarray(max_distance, X.dtype), rtol=rtol,
                           grid_size=grid_size)


@partial(jax.jit, static_argnames=("grid_size", "max_bisection", "grid_chunk"))
def gradient_ray_flip_kernel(params: MLPParams, X: jax.Array, max_distance: jax.Array,
                             rtol: float = 1e-6, grid_size: int = 64, max_bisection: int = 60,
                             grid_chunk: int = 4) -> AttackResult:
    """Pure kernel of :func:`gradient_ray_flip` (no input checks; vmap it over networks).

    One forward and backward pass give f(x) and ∇f(x) = g₁ K₁ᵀ; the ray's image in the
    first layer, u K₁ = −sign(f) ∇f K₁/‖∇f‖, costs one more d·h₁ product, and then every
    point on the ray costs only the layers after the first.
    """
    z = _first_layer(params, X)
    f0, g1 = _tail_value_and_grad(params, z)
    G = g1 @ params.kernels[0].T
    gn = jnp.linalg.norm(G, axis=-1)
    has_dir = gn > 0
    U = jnp.where(has_dir, -jnp.sign(f0) / jnp.where(has_dir, gn, 1.0), 0.0)[:, None] * G
    return _ray_search(params, X, U, z, U @ params.kernels[0], f0, gn, has_dir, max_distance,
                       rtol, 1e-4, grid_size, max_bisection, grid_chunk)


def gradient_ray_flip(net: Network, X: jax.Array, *, max_distance: float | None = None,
                      rtol: float = 1e-6, grid_size: int = 64) -> AttackResult:
    """One gradient evaluation, then the exact first flip along the gradient ray.

        t*(x) = inf{ t ∈ (0, T] : f(x) · f(x − t sign(f(x)) ∇f(x)/‖∇f(x)‖) < 0 }

    The same search as :func:`ray_flip_distance` with the direction u = −sign(f)∇f/‖∇f‖
    (:func:`~mini_adv.gradients.flip_direction`), in one kernel: where a single adaptive
    :func:`gradient_step` guesses t ≈ |f|/‖∇f‖, this finds the first sign change along the
    same ray to relative accuracy ``rtol``. Chapter 1 predicts t* ≈ |f|/‖∇f‖ ≈ ‖x‖/√d
    for random networks (Bartlett, Bubeck & Cherapanamjeri 2021).

    Args:
        net: a :class:`~mini_adv.nets.RandomMLP` or :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs.
        max_distance: the budget T > 0 (default: twice the largest ‖x‖ in the batch).
        rtol: width of the final bracket relative to its far end, in (0, 1).
        grid_size: number of grid points K ≥ 2 of the bracketing walk.

    Returns:
        :class:`AttackResult` as :func:`ray_flip_distance` returns it; rows with ∇f(x) = 0
        have status ``ZERO_DIRECTION``.

    Raises:
        ValueError: for a shape mismatch, non-finite inputs, a non-positive budget,
            ``rtol`` outside (0, 1) or ``grid_size`` < 2.
    """
    params = as_params(net)
    X = check_batch(params, X)
    if max_distance is None:
        max_distance = 2.0 * float(jnp.max(jnp.linalg.norm(X, axis=-1)))
    _check_positive("max_distance", max_distance)
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must lie in (0, 1), got {rtol!r}")
    _check_positive("grid_size", grid_size, integer=True, minimum=2, strict=False)
    return gradient_ray_flip_kernel(params, X, jnp.asarray(max_distance, X.dtype), rtol=rtol,
                                    grid_size=grid_size)


# --------------------------------------------------------------------------------------
# One gradient step (chapters 3 and 4)
# --------------------------------------------------------------------------------------

@partial(jax.jit, static_argnames=("adaptive",))
def gradient_step_kernel(params: MLPParams, X: jax.Array, size: jax.Array, *,
                         adaptive: bool, f_clean: jax.Array | None = None,
                         grad: jax.Array | None = None) -> AttackResult:
    """Pure kernel of :func:`gradient_step`: ``size`` is c (adaptive) or s (fixed).

    ``f_clean`` (B,) and ``grad`` (B, d) = ∇f(X) may be passed when the caller has them
    already (both or neither); otherwise they are computed here.
    """
    f0, G = value_and_input_grad_kernel(params, X) if grad is None else (f_clean, grad)
    gn2 = jnp.sum(G * G, axis=-1)
    has_dir = gn2 > 0
    usable = has_dir & (f0 != 0)
    coef = (size * f0 / jnp.where(has_dir, gn2, 1.0)) if adaptive else size * jnp.sign(f0)
    x_adv = X - jnp.where(usable, coef, 0.0)[:, None] * G
    return finalize(params, X, x_adv, f0, usable, ~has_dir)


def gradient_step(net: Network, X: jax.Array, *, c: float | None = None,
                  s: float | None = None) -> AttackResult:
    """One step along the input gradient (Bubeck et al. 2021; Montanari & Wu 2022).

        adaptive:  x' = x − c · f(x) ∇f(x) / ‖∇f(x)‖²      (‖x' − x‖ = c·|f(x)|/‖∇f(x)‖)
        fixed:     x' = x − s · sign(f(x)) ∇f(x)             (‖x' − x‖ = s·‖∇f(x)‖)

    For a linear f the adaptive step gives f(x') = (1 − c) f(x): c = 1 lands on the boundary
    and any c ∈ (1, 2] flips the sign. For a random network that is nearly linear on the
    scale ‖x‖/√d, c slightly above 1 flips most inputs (chapter 3). The fixed form is
    Montanari & Wu's step s(x) = sign(f(x))·s_d, whose flip probability chapter 4 predicts.

    Args:
        net: a :class:`~mini_adv.nets.RandomMLP` or :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs.
        c: adaptive step factor, c > 0 (exactly one of ``c`` and ``s``).
        s: fixed step size, s > 0.

    Returns:
        :class:`AttackResult`; ``flipped`` is verified by re-evaluating the network at x'.
        Rows with ∇f(x) = 0 stay at x with status ``ZERO_DIRECTION``, rows with f(x) = 0
        with ``ZERO_OUTPUT``; ``x_adv`` is the step's end point whether it flips or not.

    Raises:
        ValueError: for a shape mismatch, non-finite inputs, c and s both or neither given,
            or a non-positive step.
    """
    if (c is None) == (s is None):
        raise ValueError("give exactly one of c (adaptive step x − c·f∇f/‖∇f‖²) and "
                         "s (fixed step x − s·sign(f)∇f)")
    name, size = ("c", c) if c is not None else ("s", s)
    _check_positive(name, size)
    params = as_params(net)
    X = check_batch(params, X)
    return gradient_step_kernel(params, X, jnp.asarray(size, X.dtype), adaptive=c is not None)


# --------------------------------------------------------------------------------------
# Normalised gradient flow (chapter 3)
# --------------------------------------------------------------------------------------

def flow_step(x: jax.Array, f: jax.Array, G: jax.Array, s0: jax.Array, h_min: jax.Array,
              step_fraction: float, remaining: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One Euler step of the normalised flow, batched: ``(x_new, h)`` for rows of ``x``.

        h = min(max(α·|f(x)|/‖∇f(x)‖, h_min), remaining),   x_new = x − h·sign(f(x₀))·∇f/‖∇f‖

    (rows with ∇f = 0 do not move). Shared by :func:`gradient_flow` and
    :func:`gradient_flow_path`, so the drawn path is the integrated one.
    """
    D, gn = _unit(G)
    r = jnp.abs(f) / jnp.where(gn > 0, gn, 1.0)
    h = jnp.minimum(jnp.maximum(step_fraction * r, h_min), remaining)
    return x - (s0 * h)[:, None] * D, h


@partial(jax.jit, static_argnames=("max_steps", "max_bisection"))
def gradient_flow_kernel(params: MLPParams, X: jax.Array, max_distance: jax.Array,
                         step_fraction: float = 0.1, min_step: float = 1e-3,
                         max_steps: int = 1000, rtol: float = 1e-6,
                         max_bisection: int = 60) -> AttackResult:
    """Pure kernel of :func:`gradient_flow` (no input checks; vmap it over networks).

    One ``lax.while_loop`` with one evaluation of f and ∇f per row and iteration (a single
    trace of the network's backward pass, which keeps the compile time down). A row is in
    one of two phases (then done):

    * *step*: the Euler steps of :func:`flow_step`, carried in the coordinates of
      :class:`_Chart` (each step costs one pass through the layers after the first, forward
      and backward, plus 2·h₁² multiply-adds a row for the first layer in the first-layer
      chart, or 2·d·h₁ in the input chart). Once the evaluated point is clearly across
      {f = 0} the row searches the last straight segment [x_prev, x], of length h:
    * *search*: one point a row and iteration on that segment, evaluated from the first
      layer's line z₁(x_prev) + t·(z₁(x) − z₁(x_prev))/h, for the first t at which s₀f is
      clearly negative (s₀f < −4·eps·‖∇f(x₀)‖·‖x_t‖, the step's own crossing rule, so that
      the far end of the bracket is a sign change that a re-evaluation almost always
      reproduces; the rare row whose re-evaluation in input space disagrees moves on along
      the segment until it agrees, :func:`_push_outwards`): the
      secant (regula falsi) point of the bracket [lo, hi] shifted by 0.45 × the target
      width towards the side that did not move last (f is piecewise linear along the
      segment, so two points usually bracket the crossing within 2τ), kept inside the
      inner 7/8 of the bracket, and every fourth point the midpoint; until
      hi − lo ≤ max(``rtol``·(path length), eps·‖x_prev‖) (the float resolution of the
      points), at most ``2·max_bisection`` points.

    The crossing is then formed in input space once and re-evaluated there.
    """
    B = X.shape[0]
    chart = _Chart(params)
    eps = jnp.finfo(X.dtype).eps
    b1 = 0.0 if params.biases is None else params.biases[0]
    z0 = _first_layer(params, X)
    zeros, false = jnp.zeros((B,), X.dtype), jnp.zeros((B,), bool)
    izeros = jnp.zeros((B,), jnp.int32)
    STEP, SEARCH, FOUND, NONE = 0, 1, 2, 3
    max_search = 2 * max_bisection

    def cond(st):
        return (st["k"] <= max_steps + max_search + 1) & jnp.any(st["mode"] < FOUND)

    def body(st):
        k, first, mode = st["k"], st["k"] == 0, st["mode"]
        f, g1 = _tail_value_and_grad(params, st["ze"])     # at each row's evaluation point
        v, u, gn = chart.direction(g1)
        f0, gn0 = jnp.where(first, f, st["f0"]), jnp.where(first, gn, st["gn0"])
        s0 = jnp.sign(f0)

        # -- step: the row is at its iterate x_k (ze = z). A crossing counts once f is
        # clearly across: within a few ulps of {f = 0} its sign is rounding noise, and the
        # flow simply takes another (minimum) step.
        stepping = mode == STEP
        cross = stepping & ~first & (f * s0 < -4 * eps * gn0 * jnp.sqrt(st["xn2"]))
        dead = stepping & ~cross & (gn == 0)
        go = (stepping & ~cross & ~dead & (st["length"] < max_distance) & (f0 != 0)
              & (st["steps"] < max_steps))
        # the step h = min(max(α|f|/‖∇f‖, h_min), budget left), x ← x + c∇f, c = −sign(f₀)h/‖∇f‖
        safe = jnp.where(gn > 0, gn, 1.0)
        h_min = jnp.where(first, min_step * jnp.abs(f) / safe, st["h_min"])
        h = jnp.minimum(jnp.maximum(step_fraction * jnp.abs(f) / safe, h_min),
                        max_distance - st["length"])
        c = jnp.where(go, -s0 * h / safe, 0.0)
        z, g2 = st["z"], go[:, None]
        # ‖x + c∇f‖² = ‖x‖² + 2c⟨xK₁, g₁⟩ + c²‖∇f‖²  (⟨x, g₁K₁ᵀ⟩ = ⟨xK₁, g₁⟩)
        xn2 = jnp.maximum(st["xn2"] + 2 * c * jnp.sum((z - b1) * g1, axis=-1) + (c * gn) ** 2,
                          0.0)
        # the first layer at the new point is formed afresh from w (not z + c·u), so that
        # float rounding does not accumulate over the path's many steps
        w = st["w"] + c[:, None] * v
        z_new = z0 + chart.image(w)
        w_prev, z_prev = jnp.where(g2, st["w"], st["w_prev"]), jnp.where(g2, z, st["z_prev"])
        f_prev = jnp.where(go, f, st["f_prev"])
        xn2_prev = jnp.where(go, st["xn2"], st["xn2_prev"])
        h_last = jnp.where(go, h, st["h_last"])
        length = st["length"] + jnp.where(go, h, 0.0)

        # -- search: the row evaluated the point t = p of its last segment [x_prev, x] (of
        # length h). A point counts as across once s₀f < −m(t), m(t) = 4·eps·‖∇f(x₀)‖·‖x_t‖,
        # the flow's own crossing rule, with ‖x_t‖² = ‖x_prev‖² + t·a + t², a = 2⟨x_prev, d⟩
        # = (‖x‖² − ‖x_prev‖² − h²)/h for the unit direction d of the segment.
        def across(t, value):       # g̃(t) = s₀f + m(t): the crossing is its first root
            a = (xn2 - xn2_prev - h_last ** 2) / jnp.where(h_last > 0, h_last, 1.0)
            return value + 4 * eps * gn0 * jnp.sqrt(jnp.maximum(xn2_prev + t * (a + t), 0.0))

        searching = mode == SEARCH
        p = st["p"]
        g = across(p, s0 * f)
        below = searching & (g < 0)
        lo = jnp.where(searching & ~below, p, st["lo"])
        g_lo = jnp.where(searching & ~below, g, st["g_lo"])
        hi, g_hi = jnp.where(below, p, st["hi"]), jnp.where(below, g, st["g_hi"])
        n = st["n"] + searching
        right = jnp.where(searching, ~below, st["right"])   # next shift: towards hi if lo moved
        # rows that crossed now start on [0, h] with g̃(0) ≥ 0 (x_prev was not across) and
        # g̃(h) < 0 (x is)
        lo, hi = jnp.where(cross, 0.0, lo), jnp.where(cross, h_last, hi)
        g_lo = jnp.where(cross, across(0.0, s0 * f_prev), g_lo)
        g_hi = jnp.where(cross, across(h_last, s0 * f), g_hi)
        right = right & ~cross
        # the segment's unit direction in the first layer (rows that search or just crossed
        # no longer step, so z and z_prev stay those of their last segment)
        zD = (z - z_prev) / jnp.where(h_last > 0, h_last, 1.0)[:, None]
        # the target width: rtol of the path length, but not below the float resolution
        # eps·‖x‖ of the points themselves (as in the ray search)
        tol = jnp.maximum(rtol * length, eps * jnp.sqrt(xn2_prev))
        narrow = hi - lo <= tol
        mode = jnp.where(cross | searching,
                         jnp.where(narrow, FOUND, jnp.where(n < max_search, SEARCH, NONE)),
                         jnp.where(stepping & ~go, NONE, mode))

        # the next point of every searching row: the shifted secant point, or the midpoint
        width = hi - lo
        denom = g_lo - g_hi
        frac = jnp.clip(jnp.where(denom > 0, g_lo / jnp.where(denom > 0, denom, 1.0), 0.5), 0.0, 1.0)
        shifted = lo + width * frac + jnp.where(right, 0.45, -0.45) * tol
        p_next = jnp.where(n % 4 == 3, lo + 0.5 * width,
                           jnp.clip(shifted, lo + width / 16, hi - width / 16))
        ze = jnp.where((mode == STEP)[:, None], z_new, z_prev + p_next[:, None] * zD)
        return dict(k=k + 1, mode=mode, ze=ze, w=w, z=z_new, w_prev=w_prev, z_prev=z_prev,
                    f_prev=f_prev, f0=f0, gn0=gn0, h_min=h_min, xn2=xn2, xn2_prev=xn2_prev,
                    h_last=h_last, length=length, stuck=st["stuck"] | dead,
                    steps=st["steps"] + go, lo=lo, hi=hi, g_lo=g_lo, g_hi=g_hi, n=n,
                    right=right, p=p_next)

    w0 = jnp.zeros((B, chart.size), X.dtype)
    xn2 = jnp.sum(X * X, axis=-1)
    st = jax.lax.while_loop(cond, body, dict(
        k=0, mode=izeros, ze=z0, w=w0, z=z0, w_prev=w0, z_prev=z0, f_prev=zeros, f0=zeros,
        gn0=zeros, h_min=zeros, xn2=xn2, xn2_prev=xn2, h_last=zeros, length=zeros, stuck=false,
        steps=izeros, lo=zeros, hi=zeros, g_lo=zeros, g_hi=zeros,
        n=izeros, right=false, p=zeros))
    f0, gn0, t = st["f0"], st["gn0"], st["hi"]

    # The crossing in input space: x_prev + t·D on the last segment (D = (x − x_prev)/h),
    # re-evaluated there; one that the input space does not confirm moves on along D
    # (:func:`_push_outwards`, within the budget left at x_prev).
    h_last = st["h_last"]
    x_prev = X + chart.lift(st["w_prev"])
    D = chart.lift(st["w"] - st["w_prev"]) / jnp.where(h_last > 0, h_last, 1.0)[:, None]
    found = st["mode"] == FOUND
    f_end = apply(params, x_prev + t[:, None] * D)
    t, f_end = _push_outwards(
        params, x_prev, D, t, f_end, f0, found & (f_end * f0 >= 0),
        max_distance - (st["length"] - h_last),
        jnp.maximum(rtol * st["length"], eps * jnp.sqrt(st["xn2_prev"])))
    x_end = x_prev + t[:, None] * D
    ok = found & (f_end * f0 < 0)
    usable = (gn0 > 0) & (f0 != 0)
    return finalize(params, X, jnp.where(ok[:, None], x_end, X), f0, usable,
                    ~(gn0 > 0) | st["stuck"],
                    path_length=jnp.where(ok, st["length"] - h_last + t, 0.0),
                    steps=st["steps"], f_adv=jnp.where(ok, f_end, f0))


def gradient_flow(net: Network, X: jax.Array, *, max_distance: float | None = None,
                  step_fraction: float = 0.1, min_step: float = 1e-3, max_steps: int = 1000,
                  rtol: float = 1e-6) -> AttackResult:
    """Follow the normalised gradient flow until the sign of f changes (Daniely & Shacham 2020).

        ẋ(t) = −sign(f(x₀)) ∇f(x(t)) / ‖∇f(x(t))‖,     x(0) = x₀,

    a unit-speed curve, so the time t equals the path length. Along it d|f|/dt = −‖∇f‖:
    if ‖∇f‖ ≥ g_min on the way, the sign flips by time |f(x₀)|/g_min. Daniely & Shacham show
    that for random ReLU networks with shrinking widths this happens at t = O(‖x₀‖/√d).

    Integration (explicit Euler with adaptive steps): at x_k take the step

        h_k = max(α · |f(x_k)|/‖∇f(x_k)‖,  h_min),     h_min = ``min_step`` · |f(x₀)|/‖∇f(x₀)‖,

    i.e. a fraction α = ``step_fraction`` of the current linearised distance to the boundary,
    so the steps shrink as the boundary nears and the path is followed finely where it
    matters; the floor h_min makes the path cross instead of creeping up on {f = 0}.
    At the first step whose end has the opposite sign beyond float rounding noise
    (s₀f < −4·eps·‖∇f(x₀)‖·‖x‖), the first such point is located on that last straight
    segment by a secant search in the same loop (accuracy ``rtol`` of the path length, not
    below eps·‖x‖), as the ray search of :func:`ray_flip_distance` does along a ray.

    Args:
        net: a :class:`~mini_adv.nets.RandomMLP` or :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs.
        max_distance: path-length budget T > 0 (default: twice the largest ‖x‖ in the batch).
        step_fraction: α ∈ (0, 1], the step as a fraction of |f|/‖∇f‖.
        min_step: h_min as a fraction of the initial linearised distance, in (0, 1].
        max_steps: the most Euler steps per row.
        rtol: relative accuracy of the crossing along the path.

    Returns:
        :class:`AttackResult` with ``path_length`` (the time t at the crossing; ≥
        ``delta_norm``, with equality for a straight path) and ``steps`` (Euler steps).
        Rows where ∇f vanishes at x₀ or on the way have status ``ZERO_DIRECTION``; no
        crossing within the budget gives ``NO_FLIP`` with x_adv = x.

    Raises:
        ValueError: for a shape mismatch, non-finite inputs, or budgets out of range.
    """
    params = as_params(net)
    X = check_batch(params, X)
    if max_distance is None:
        max_distance = 2.0 * float(jnp.max(jnp.linalg.norm(X, axis=-1)))
    _check_positive("max_distance", max_distance)
    _check_flow_settings(step_fraction, min_step)
    _check_positive("max_steps", max_steps, integer=True)
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must lie in (0, 1), got {rtol!r}")
    return gradient_flow_kernel(params, X, jnp.asarray(max_distance, X.dtype),
                                step_fraction=step_fraction, min_step=min_step,
                                max_steps=max_steps, rtol=rtol)


@partial(jax.jit, static_argnames=("n_steps",))
def gradient_flow_path_kernel(params: MLPParams, x: jax.Array, n_steps: int,
                              step_fraction: float = 0.1, min_step: float = 1e-3
                              ) -> tuple[jax.Array, jax.Array]:
    """Pure kernel of :func:`gradient_flow_path`: ``(points (n_steps + 1, d), crossed_at)``."""
    f0, G0 = value_and_input_grad_kernel(params, x[None])
    s0 = jnp.sign(f0)
    gn0 = jnp.linalg.norm(G0, axis=-1)
    h_min = min_step * jnp.abs(f0) / jnp.where(gn0 > 0, gn0, 1.0)

    def body(carry, k):
        xk, f, G, crossed_at = carry
        moving = crossed_at < 0
        x_new, _ = flow_step(xk, f, G, s0, h_min, step_fraction, jnp.full((1,), jnp.inf, x.dtype))
        x_new = jnp.where(moving, x_new, xk)
        f_new, G_new = value_and_input_grad_kernel(params, x_new)
        margin = 4 * jnp.finfo(x.dtype).eps * gn0[0] * jnp.linalg.norm(x_new[0])  # as in the flow
        crossed_at = jnp.where(moving & (f_new[0] * s0[0] < -margin), k + 1, crossed_at)
        return (x_new, f_new, G_new, crossed_at), x_new[0]

    (_, _, _, crossed_at), pts = jax.lax.scan(body, (x[None], f0, G0, jnp.asarray(-1)),
                                              jnp.arange(n_steps))
    return jnp.concatenate([x[None], pts]), crossed_at


def gradient_flow_path(net: Network, x: jax.Array, *, n_steps: int = 400,
                       step_fraction: float = 0.1, min_step: float = 1e-3
                       ) -> tuple[jax.Array, int]:
    """The Euler path of :func:`gradient_flow` from one input, for drawing it.

    Records x_0 = x, x_1, …, x_K with the step rule of :func:`flow_step`; once a step
    ends on the other side of {f = 0} the path stops there (later points repeat it).

    Args:
        net: a network; x: ``(d,)`` one input; n_steps: K ≥ 1 recorded steps.
        step_fraction, min_step: as in :func:`gradient_flow`.

    Returns:
        ``(points, k)``: ``points`` of shape ``(K + 1, d)``, and the index k of the first
        point past the boundary (−1 if the path did not cross within K steps).

    Raises:
        ValueError: for a shape mismatch, non-finite input or out-of-range settings.
    """
    params = as_params(net)
    x = check_batch(params, jnp.asarray(x)[None], "x")[0]
    _check_positive("n_steps", n_steps, integer=True)
    _check_flow_settings(step_fraction, min_step)
    pts, k = gradient_flow_path_kernel(params, x, n_steps, step_fraction, min_step)
    return pts, int(k)


# --------------------------------------------------------------------------------------
# Baselines: DeepFool and ℓ2 PGD
# --------------------------------------------------------------------------------------

@partial(jax.jit, static_argnames=("max_iter",))
def deepfool_kernel(params: MLPParams, X: jax.Array, overshoot: float = 0.02,
                    max_iter: int = 50, stability: float = 1e-4) -> AttackResult:
    """Pure kernel of :func:`deepfool` (no input checks; vmap it over networks).

    The iterates are carried in the coordinates of :class:`_Chart`: an iteration costs one
    pass through the layers after the first, forward and backward, plus h₁² (or 2·d·h₁)
    multiply-adds a row for the first layer; the final point is formed in input space once
    and re-evaluated there.
    """
    B = X.shape[0]
    chart = _Chart(params)
    zX = _first_layer(params, X)
    scale = 1.0 + overshoot
    zeros, false = jnp.zeros((B,), X.dtype), jnp.zeros((B,), bool)

    # Each iteration evaluates f and ∇f at x_k = X + (1 + overshoot) Σ_{j<k} r_j (k = 0: the
    # input), stops the rows that flipped, and adds r_k to the others.
    def cond(st):
        return (st["k"] == 0) | ((st["k"] <= max_iter) & jnp.any(st["active"]))

    def body(st):
        k, first = st["k"], st["k"] == 0
        f, g1 = _tail_value_and_grad(params, zX + scale * st["s_tot"])
        v, u, gn = chart.direction(g1)
        f0 = jnp.where(first, f, st["f0"])
        s0 = jnp.sign(f0)
        active = st["active"]
        dead = active & (f * s0 >= 0) & (gn == 0)
        active = jnp.where(first, (gn > 0) & (f != 0), active & (f * s0 >= 0) & ~dead)
        active = active & (k < max_iter)
        # r = −sign(f₀)(|f|/‖∇f‖ + stability) ∇f/‖∇f‖
        safe = jnp.where(gn > 0, gn, 1.0)
        c = jnp.where(active, -s0 * (jnp.abs(f) / safe + stability) / safe, 0.0)
        return dict(k=k + 1, r_tot=st["r_tot"] + c[:, None] * v, s_tot=st["s_tot"] + c[:, None] * u,
                    f0=f0, gn0=jnp.where(first, gn, st["gn0"]), active=active,
                    stuck=st["stuck"] | dead, steps=st["steps"] + active)

    st = jax.lax.while_loop(cond, body, dict(
        k=0, r_tot=jnp.zeros((B, chart.size), X.dtype), s_tot=jnp.zeros_like(zX), f0=zeros,
        gn0=zeros, active=false, stuck=false, steps=jnp.zeros((B,), jnp.int32)))
    f0, gn0 = st["f0"], st["gn0"]
    x = X + scale * chart.lift(st["r_tot"])
    f_x = apply(params, x)
    flipped = f_x * f0 < 0
    return finalize(params, X, jnp.where(flipped[:, None], x, X), f0, (gn0 > 0) & (f0 != 0),
                    ~(gn0 > 0) | st["stuck"], steps=st["steps"], f_adv=jnp.where(flipped, f_x, f0))


def deepfool(net: Network, X: jax.Array, *, overshoot: float = 0.02,
             max_iter: int = 50) -> AttackResult:
    """Binary ℓ2 DeepFool (Moosavi-Dezfooli, Fawzi & Frossard 2016), as foolbox 3 runs it.

        r_k = −sign(f(x₀)) (|f(x_k)|/‖∇f(x_k)‖ + 10⁻⁴) ∇f(x_k)/‖∇f(x_k)‖
        x_{k+1} = x₀ + (1 + overshoot) Σ_{j≤k} r_j,

    repeated until f(x_{k+1}) has the opposite sign of f(x₀) or ``max_iter`` iterations.
    Each r_k is the step onto the zero set of the linearisation at x_k (plus foolbox's
    10⁻⁴ for numerical stability); the overshoot pushes the last iterate across. On a linear
    model it stops after one iteration at distance (1 + overshoot)(|f|/‖∇f‖ + 10⁻⁴): it is
    *nearly*, not exactly, minimal. A practical baseline for chapter 3's comparison.

    Args:
        net: a :class:`~mini_adv.nets.RandomMLP` or :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs.
        overshoot: ≥ 0, the factor 1 + overshoot on the accumulated step.
        max_iter: ≥ 1, the most linearise-and-step iterations.

    Returns:
        :class:`AttackResult`; rows that did not flip within ``max_iter`` are returned at
        x with status ``NO_FLIP`` (``ZERO_DIRECTION`` if ∇f vanished on the way).

    Raises:
        ValueError: for a shape mismatch, non-finite inputs, a negative overshoot or a
            non-positive ``max_iter``.
    """
    _check_positive("overshoot", overshoot, strict=False)
    _check_positive("max_iter", max_iter, integer=True)
    params = as_params(net)
    X = check_batch(params, X)
    return deepfool_kernel(params, X, overshoot=overshoot, max_iter=max_iter)


@partial(jax.jit, static_argnames=("steps",))
def pgd_l2_kernel(params: MLPParams, X: jax.Array, eps: jax.Array, steps: int,
                  step_size: jax.Array) -> AttackResult:
    """Pure kernel of :func:`pgd_l2` (no input checks; vmap it over networks)."""
    f0, G0 = value_and_input_grad_kernel(params, X)
    s0 = jnp.sign(f0)
    gn0 = jnp.linalg.norm(G0, axis=-1)
    usable = (gn0 > 0) & (f0 != 0)

    def body(carry, _):
        x, length = carry
        _, G = value_and_input_grad_kernel(params, x)
        D, _ = _unit(G)
        y = x - (s0 * step_size)[:, None] * D                  # ascend the margin −sign(f₀)·f
        delta = y - X
        n = jnp.linalg.norm(delta, axis=-1, keepdims=True)
        y = X + delta * jnp.minimum(1.0, eps / jnp.where(n > 0, n, 1.0))  # project on the ball
        y = jnp.where(usable[:, None], y, x)
        return (y, length + jnp.linalg.norm(y - x, axis=-1)), None

    (x, path), _ = jax.lax.scan(body, (X, jnp.zeros(X.shape[0], X.dtype)), None, length=steps)
    return finalize(params, X, x, f0, usable, ~(gn0 > 0), path_length=path,
                    steps=jnp.full((X.shape[0],), steps))


def pgd_l2(net: Network, X: jax.Array, *, eps: float, steps: int = 50,
           step_size: float | None = None) -> AttackResult:
    """ℓ2 projected gradient ascent on the margin −sign(f(x₀))·f (Madry et al. 2018).

        x_{k+1} = x₀ + Π_ε( x_k − η · sign(f(x₀)) ∇f(x_k)/‖∇f(x_k)‖ − x₀ ),
        Π_ε(δ) = δ · min(1, ε/‖δ‖),

    from x_0 = x₀ (no random start), for ``steps`` steps of length η = ``step_size``
    (default 2.5 ε/steps, Madry et al.'s rule). The attack answers "is there a flip
    within radius ε?" rather than "how far is the boundary?": its ‖δ‖ is usually ε.
    ``x_adv`` is the last iterate, flipped or not.

    Args:
        net: a :class:`~mini_adv.nets.RandomMLP` or :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs.
        eps: radius ε > 0 of the ℓ2 ball.
        steps: number of steps ≥ 1.
        step_size: η > 0.

    Returns:
        :class:`AttackResult`; ``path_length`` is the length of the projected path walked
        (at most ``steps · η``).

    Raises:
        ValueError: for a shape mismatch, non-finite inputs or non-positive budgets.
    """
    _check_positive("eps", eps)
    _check_positive("steps", steps, integer=True)
    if step_size is None:
        step_size = 2.5 * eps / steps
    _check_positive("step_size", step_size)
    params = as_params(net)
    X = check_batch(params, X)
    return pgd_l2_kernel(params, X, jnp.asarray(eps, X.dtype), steps,
                         jnp.asarray(step_size, X.dtype))

"""Searching a straight segment for the first sign change of f: the one root finder of the
attacks, the rounding band it respects, and the default budget.

Both :func:`~mini_adv.attacks.ray_flip_distance` (along a ray) and
:func:`~mini_adv.attacks.gradient_flow` (along the last Euler segment of the flow) locate the
first crossing of {f = 0} with :func:`_root_on_line`; both count a sign change only beyond the
band of :func:`rounding_band`, and the chapter-3 checker uses the same band.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mini_adv.attacks._layers import _tail
from mini_adv.nets import MLPParams, apply

WALK, SEARCH, FOUND, NONE = 0, 1, 2, 3
"""The phases of a row in :func:`_root_on_line`."""


def rounding_band(grad_norm: jax.Array, xnorm: jax.Array, eps: jax.Array | float) -> jax.Array:
    """The level 4·eps·‖∇f(x₀)‖·‖x‖ below which a sign of f is rounding noise.

    Two compilations of f (e.g. from the first layer's line and from the input space) can
    disagree by about eps·‖∇f‖·‖x‖ near {f = 0}; a point x counts as across only where
    s₀·f(x) < −band, so that any re-evaluation reproduces the sign change.

    Args:
        grad_norm: ‖∇f(x₀)‖ at the start, shape ``(B,)``.
        xnorm: ‖x‖ at the point (``1.0`` for the band's growth per unit of length).
        eps: the machine epsilon of the computation's dtype.

    Returns:
        The band, broadcast from the arguments' shapes.
    """
    return 4 * eps * grad_norm * xnorm


def secant_fraction(g_lo: jax.Array, g_hi: jax.Array) -> jax.Array:
    """Where the secant (regula falsi) point lies in a bracket, as a fraction in [0, 1].

        frac = g(lo) / (g(lo) − g(hi)),   t_s = lo + frac·(hi − lo)

    for g(lo) ≥ 0 > g(hi); ``0.5`` (the midpoint) where the two values do not decrease.
    """
    denom = g_lo - g_hi
    return jnp.clip(jnp.where(denom > 0, g_lo / jnp.where(denom > 0, denom, 1.0), 0.5), 0.0, 1.0)


def default_budget(X: jax.Array) -> jax.Array:
    """The attacks' default distance budget T = 2·maxᵢ ‖xᵢ‖ for a batch ``X (B, d)`` (jit-able).

    Returns:
        A 0-d array in the dtype of ``X``.

    Raises:
        ValueError: for a concrete batch of zero vectors only (T would be 0): pass
            ``max_distance`` explicitly.
    """
    T = 2.0 * jnp.max(jnp.linalg.norm(X, axis=-1))
    if not isinstance(T, jax.core.Tracer) and not float(T) > 0:
        raise ValueError("every row of X is zero, so the default budget 2·max‖x‖ is 0; "
                         "pass max_distance explicitly")
    return T


class _Line(NamedTuple):
    """The segment z₁ = zA + t·zD (t ≥ 0) and g̃(t) = s₀·f + margin0 + margin1·t on it.

    ``zA``, ``zD`` are ``(B, h₁)``; ``s0``, ``margin0``, ``margin1`` are ``(B,)``.
    """

    zA: jax.Array
    zD: jax.Array
    s0: jax.Array
    margin0: jax.Array
    margin1: jax.Array

    def g(self, params: MLPParams, P: jax.Array) -> jax.Array:
        """g̃ at the points ``P (B, n)`` of every row: one batched pass through the tail."""
        f = _tail(params, self.zA[:, None, :] + P[:, :, None] * self.zD[:, None, :])
        return self.s0[:, None] * f + self.margin0[:, None] + self.margin1[:, None] * P


class _Bracket(NamedTuple):
    """An interval [lo, hi] of t with g̃(lo) ≥ 0 > g̃(hi) (the values ``g_lo``, ``g_hi``)."""

    lo: jax.Array
    hi: jax.Array
    g_lo: jax.Array
    g_hi: jax.Array


class _SearchState(NamedTuple):
    i: jax.Array          # the pass
    phase: jax.Array      # (B,) WALK, SEARCH, FOUND or NONE
    k: jax.Array          # (B,) the next grid index of a walking row
    bracket: _Bracket
    n: jax.Array          # (B,) evaluations of g̃


def _probes(b: _Bracket, tol: jax.Array, rtol: float) -> jax.Array:
    """Four sorted probes of every bracket: the secant point ∓ τ and the thirds, ``(B, 4)``."""
    w = b.hi - b.lo
    ts = b.lo + w * secant_fraction(b.g_lo, b.g_hi)
    tau = 0.45 * jnp.maximum(tol, rtol * ts)
    a, e = jnp.maximum(ts - tau, b.lo), jnp.minimum(ts + tau, b.hi)
    c, d = b.lo + w / 3, b.lo + 2 * w / 3
    return jnp.stack([jnp.minimum(a, c), jnp.minimum(jnp.maximum(a, c), jnp.minimum(e, d)),
                      jnp.maximum(jnp.maximum(a, c), jnp.minimum(e, d)), jnp.maximum(e, d)],
                     axis=1)


def _search_pass(params: MLPParams, line: _Line, ts: jax.Array, tol: jax.Array, rtol: float,
                 width: int, st: _SearchState) -> _SearchState:
    """One pass of :func:`_root_on_line`: ``width`` points a row, then the new brackets."""
    K = ts.shape[0]
    b = st.bracket
    walk, search = st.phase == WALK, st.phase == SEARCH
    idx = st.k[:, None] + jnp.arange(width)[None, :]
    P = jnp.where(walk[:, None], ts[jnp.minimum(idx, K - 1)], _probes(b, tol, rtol))
    g = line.g(params, P)
    # the first sub-interval of [lo, p₁, …, p₄, hi] whose ends differ in sign: its right end
    # is the leftmost point with g̃ < 0 (hi if none), its left end the point before; both
    # are read from Q = [lo, p₁, …, p₄] (and their g̃ values) in one gather
    opp = (g < 0) & ((idx < K) | ~walk[:, None])
    hit = jnp.any(opp, axis=1)
    first = jnp.argmax(opp, axis=1)               # the leftmost point with g̃ < 0, if hit
    left = jnp.where(hit, first, width)           # no sign change: the last probe
    # a walking row without a sign change moves on to its last valid grid point
    left = jnp.where(walk & ~hit, jnp.clip(K - 1 - st.k, 0, width - 1) + 1, left)
    Q = jnp.stack([jnp.concatenate([b.lo[:, None], P], axis=1),
                   jnp.concatenate([b.g_lo[:, None], g], axis=1)], axis=-1)
    ends = jnp.take_along_axis(Q, jnp.stack([left, first + 1], axis=1)[:, :, None], axis=1)
    move = walk | search
    b = _Bracket(lo=jnp.where(move, ends[:, 0, 0], b.lo),
                 hi=jnp.where(move & hit, ends[:, 1, 0], b.hi),
                 g_lo=jnp.where(move, ends[:, 0, 1], b.g_lo),
                 g_hi=jnp.where(move & hit, ends[:, 1, 1], b.g_hi))
    k = st.k + width * walk
    narrow = b.hi - b.lo <= jnp.maximum(tol, rtol * b.hi)
    phase = jnp.where(search | (walk & hit), jnp.where(narrow, FOUND, SEARCH), st.phase)
    phase = jnp.where(walk & ~hit, jnp.where(k >= K, NONE, WALK), phase)
    return _SearchState(st.i + 1, phase, k, b, st.n + width * move)


def _root_on_line(params: MLPParams, line: _Line, start: _Bracket, phase: jax.Array,
                  ts: jax.Array, tol: jax.Array, rtol: float, max_iter: int, width: int = 4
                  ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """First point along ``line`` where s₀·f is clearly negative, to width max(tol, rtol·hi):

        t* = inf{ t : g̃(t) < 0 },   g̃(t) = s₀·f(zA + t·zD) + margin0 + margin1·t.

    Within a few ulps of the boundary the sign of f is rounding noise; callers pass the
    margin of :func:`rounding_band`, m(t) = band(‖∇f(x₀)‖, ‖x_A‖) + band(‖∇f(x₀)‖, 1)·t ≥
    4·eps·‖∇f‖·‖x_A + t u‖, so that the far end of the bracket is almost always a sign
    change that any re-evaluation reproduces (callers re-evaluate it in input space and move
    the rare disagreeing row outwards, :func:`_push_outwards`).

    One loop in which every row is in one of two phases, so the rows share one batched pass
    through the layers after the first (``width`` points a row and pass):

    * *walk* (``phase`` = WALK): the next ``width`` points of the grid ``ts (K,)`` (t₀ < t₁ <
      ⋯), until the first t_k with g̃(t_k) < 0; the bracket is then [t_{k−1}, t_k] (``start``
      gives t₋₁ and g̃(t₋₁)), and the row searches. A row that reaches the end of the grid
      without a sign change is done, not found.
    * *search* (``phase`` = SEARCH, with a bracket ``start``): probes at t_s ∓ τ around the
      secant point t_s = lo + (hi − lo)·:func:`secant_fraction`, with 2τ just below the target
      width, and at the thirds of [lo, hi]; the new bracket is the first sub-interval of
      [lo, p₁, …, p₄, hi] whose ends differ in sign. Along a line f of a ReLU network is
      piecewise linear with few kinks on a short bracket, so the secant point is usually
      exact and the probes around it end the search at once; the thirds make the bracket
      shrink at least threefold a pass whatever f does (bisection halves it).

    Args:
        params: one network. line: the segment and its margins. start: the initial brackets.
        phase: ``(B,)`` initial phases (FOUND or NONE for rows with nothing to do).
        ts: ``(K,)`` the walking grid (any one point when no row walks).
        tol: ``(B,)`` absolute target width. rtol: target width relative to hi.
        max_iter: the most passes. width: points a row and pass.

    Returns:
        ``(hi, found, evaluations per row)``, each ``(B,)``.
    """
    B = line.zA.shape[0]
    init = _SearchState(jnp.asarray(0), phase, jnp.zeros((B,), jnp.int32), start,
                        jnp.zeros((B,), jnp.int32))
    st = jax.lax.while_loop(
        lambda st: (st.i < max_iter) & jnp.any(st.phase < FOUND),
        lambda st: _search_pass(params, line, ts, tol, rtol, width, st), init)
    return st.bracket.hi, st.phase == FOUND, st.n


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
    when no row is pending.

    Returns:
        ``(t, f(X + t·U))``, each ``(B,)``.
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

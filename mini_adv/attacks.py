"""Attacks: ways of moving x to the other side of the decision boundary {f = 0}.

Every attack takes a network (a :class:`~mini_adv.nets.RandomMLP`, or its pure form
:class:`~mini_adv.nets.MLPParams`) and a batch ``X`` of shape ``(B, d)``, runs as one jitted
kernel with its loops inside ``lax.while_loop``, and returns an :class:`AttackResult`.
A flip is counted only when the network, re-evaluated at ``x_adv``, has the opposite sign:
f(x) · f(x_adv) < 0. Points where nothing can be done are reported by :class:`Status`,
never as successes and never as NaN.

================================  =====================================================
:func:`ray_flip_distance`         first sign change along given rays (chapter 1)
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
             steps: jax.Array | None = None) -> AttackResult:
    """Re-evaluate f at ``x_adv`` and build the verified :class:`AttackResult` (jit-able).

    ``usable`` marks rows the attack could work on; ``no_direction`` rows with nothing to
    follow. ``flipped`` comes from re-evaluation only, never from the attack's own claim.
    ``path_length`` defaults to ‖x_adv − x‖ and ``steps`` to 1.
    """
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


def _locate_crossing(params: MLPParams, A: jax.Array, D: jax.Array, lo: jax.Array,
                     hi: jax.Array, t_max: jax.Array, found: jax.Array, f0: jax.Array,
                     gnorm: jax.Array, xnorm: jax.Array, tol: jax.Array,
                     max_bisection: int, rtol: float = 0.0
                     ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Bisect a bracketed sign change on the segments t ↦ A + t D, then confirm it.

    On entry, for rows with ``found``: f(A + lo D) has the sign of ``f0`` and f(A + hi D)
    the opposite sign (D has unit rows). Bisection shrinks [lo, hi] to width
    max(``tol``, ``rtol``·hi), with hi the current far end (so ``rtol`` is relative to the
    crossing itself, however close to 0 it lies)
    Then the far end is *confirmed*: within a few ulps of the boundary the sign of f is
    rounding noise (two compilations of f can disagree there by about eps·‖∇f‖·‖x‖), so
    the point is pushed outwards along D (doubling steps, never past ``t_max``) until
    |f| ≥ 4·eps·‖∇f(x)‖·‖x_adv‖ with the opposite sign. A row that cannot be confirmed
    is returned as not found.

    Returns:
        ``(t, x_end, ok, evals)``: the final far end t, the point A + t D, whether it is a
        confirmed crossing, and the number of function evaluations spent per row.
    """
    eps = jnp.finfo(A.dtype).eps

    def opposite(t):
        return apply(params, A + t[:, None] * D) * f0 < 0

    def bisect_cond(state):
        i, lo, hi = state
        return (i < max_bisection) & jnp.any(found & (hi - lo > jnp.maximum(tol, rtol * hi)))

    def bisect_body(state):
        i, lo, hi = state
        active = found & (hi - lo > jnp.maximum(tol, rtol * hi))
        mid = 0.5 * (lo + hi)
        opp = opposite(mid)
        return i + 1, jnp.where(active & ~opp, mid, lo), jnp.where(active & opp, mid, hi)

    n_bisect, lo, hi = jax.lax.while_loop(bisect_cond, bisect_body, (0, lo, hi))
    step0 = jnp.maximum(hi - lo, 4 * eps * xnorm)

    def confirm_state(i, t):
        x_end = A + t[:, None] * D
        f_end = apply(params, x_end)
        margin = 4 * eps * gnorm * jnp.linalg.norm(x_end, axis=-1)
        return i, t, x_end, (f_end * f0 < 0) & (jnp.abs(f_end) >= margin)

    def confirm_cond(state):
        i, t, _, ok = state
        return (i < 48) & jnp.any(found & ~ok & (t < t_max))

    def confirm_body(state):
        i, t, _, ok = state
        push = found & ~ok & (t < t_max)
        return confirm_state(i + 1, jnp.where(push, jnp.minimum(t + step0 * 2.0**i, t_max), t))

    n_confirm, t, x_end, ok = jax.lax.while_loop(confirm_cond, confirm_body, confirm_state(0, hi))
    return t, x_end, found & ok, n_bisect + n_confirm + 1


# --------------------------------------------------------------------------------------
# Ray flip distance (chapter 1)
# --------------------------------------------------------------------------------------

@partial(jax.jit, static_argnames=("grid_size", "max_bisection"))
def ray_flip_kernel(params: MLPParams, X: jax.Array, U: jax.Array, max_distance: jax.Array,
                    rtol: float = 1e-6, min_fraction: float = 1e-4, grid_size: int = 64,
                    max_bisection: int = 60, f_clean: jax.Array | None = None,
                    grad_norm: jax.Array | None = None) -> AttackResult:
    """Pure kernel of :func:`ray_flip_distance` (no input checks; vmap it over networks).

    ``f_clean`` (B,) and ``grad_norm`` (B,) = ‖∇f(x)‖ may be passed when the caller has them
    already; otherwise they are computed here.
    """
    f0 = apply(params, X) if f_clean is None else f_clean
    U, unorm = _unit(U)
    has_dir = unorm > 0
    usable = has_dir & (f0 != 0)
    B = X.shape[0]
    ts = max_distance * jnp.geomspace(min_fraction, 1.0, grid_size)

    # 1. Bracket: walk a geometric grid t_k until the sign changes (t_0 tiny, t_K = budget).
    def bracket_cond(state):
        k, _, _, found = state
        return (k < grid_size) & jnp.any(usable & ~found)

    def bracket_body(state):
        k, lo, hi, found = state
        t = jnp.full((B,), ts[k])
        new = (apply(params, X + t[:, None] * U) * f0 < 0) & usable & ~found
        return k + 1, jnp.where(found | new, lo, t), jnp.where(new, t, hi), found | new

    zeros = jnp.zeros((B,), X.dtype)
    n_grid, lo, hi, found = jax.lax.while_loop(
        bracket_cond, bracket_body, (0, zeros, jnp.full((B,), max_distance, X.dtype),
                                     jnp.zeros((B,), bool)))

    # 2.–3. Bisect [lo, hi] to relative width rtol, then confirm the far end.
    gnorm = (jnp.linalg.norm(value_and_input_grad_kernel(params, X)[1], axis=-1)
             if grad_norm is None else grad_norm)
    xnorm = jnp.linalg.norm(X, axis=-1)
    t, x_end, ok, n_evals = _locate_crossing(
        params, X, U, lo, hi, jnp.full((B,), max_distance, X.dtype), found, f0, gnorm,
        xnorm, jnp.finfo(X.dtype).eps * xnorm, max_bisection, rtol=rtol)
    x_adv = jnp.where(ok[:, None], x_end, X)
    return finalize(params, X, x_adv, f0, usable, ~has_dir,
                    steps=jnp.full((B,), n_grid) + jnp.where(found, n_evals, 0))


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
    step), then bisect the bracket to width ``rtol``·t* (relative to the crossing itself,
    however close to x it lies). ``x_adv`` is the end of the bracket on the far side, confirmed on the returned array with |f(x_adv)| above a
    rounding-noise margin 4·eps·‖∇f(x)‖·‖x_adv‖ (pushed outwards if needed, by about
    eps·‖x‖), so every reported flip is a sign change that any re-evaluation reproduces.

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
    """Pure kernel of :func:`gradient_flow` (no input checks; vmap it over networks)."""
    B = X.shape[0]
    f0, G0 = value_and_input_grad_kernel(params, X)
    s0 = jnp.sign(f0)
    gn0 = jnp.linalg.norm(G0, axis=-1)
    usable = (gn0 > 0) & (f0 != 0)
    r0 = jnp.abs(f0) / jnp.where(gn0 > 0, gn0, 1.0)        # linearised distance at x0
    h_min = min_step * r0
    eps = jnp.finfo(X.dtype).eps

    # state: k, x (current point), x_prev, f, G, length (to x), active, crossed, stuck, steps
    def cond(st):
        return (st[0] < max_steps) & jnp.any(st[6])

    def body(st):
        k, x, x_prev, f, G, length, active, crossed, stuck, steps = st
        x_new, h = flow_step(x, f, G, s0, h_min, step_fraction, max_distance - length)
        f_new, G_new = value_and_input_grad_kernel(params, x_new)
        upd = active[:, None]
        # a crossing counts once f is clearly across: within a few ulps of {f = 0} its sign
        # is rounding noise, and the flow simply takes another (minimum) step
        margin = 4 * eps * gn0 * jnp.linalg.norm(x_new, axis=-1)
        cross_now = active & (f_new * s0 < -margin)
        length_new = jnp.where(active, length + h, length)
        dead = active & ~cross_now & (jnp.linalg.norm(G_new, axis=-1) == 0)
        out_of_budget = active & (length_new >= max_distance)
        return (k + 1, jnp.where(upd, x_new, x), jnp.where(upd, x, x_prev),
                jnp.where(active, f_new, f), jnp.where(upd, G_new, G), length_new,
                active & ~cross_now & ~dead & ~out_of_budget, crossed | cross_now,
                stuck | dead, steps + active)

    zeros = jnp.zeros((B,), X.dtype)
    init = (0, X, X, f0, G0, zeros, usable, jnp.zeros((B,), bool), jnp.zeros((B,), bool),
            jnp.zeros((B,), jnp.int32))
    _, x, x_prev, _, _, length, _, crossed, stuck, steps = jax.lax.while_loop(cond, body, init)

    # Locate the crossing on the last segment [x_prev, x] by bisection, then confirm it.
    seg, seg_len = _unit(x - x_prev)
    length_prev = length - seg_len
    t, x_end, ok, _ = _locate_crossing(
        params, x_prev, seg, zeros, seg_len, max_distance - length_prev, crossed, f0, gn0,
        jnp.linalg.norm(X, axis=-1), rtol * (length_prev + seg_len), max_bisection)
    x_adv = jnp.where(ok[:, None], x_end, X)
    path = jnp.where(ok, length_prev + t, 0.0)
    return finalize(params, X, x_adv, f0, usable, ~(gn0 > 0) | stuck, path_length=path,
                    steps=steps)


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
    At the first step whose end has the opposite sign, the crossing is located on that last
    straight segment by bisection (relative accuracy ``rtol`` of the path length) and
    confirmed above float rounding noise, as in :func:`ray_flip_distance`.

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
    """Pure kernel of :func:`deepfool` (no input checks; vmap it over networks)."""
    B = X.shape[0]
    f0, G0 = value_and_input_grad_kernel(params, X)
    s0 = jnp.sign(f0)
    gn0 = jnp.linalg.norm(G0, axis=-1)
    usable = (gn0 > 0) & (f0 != 0)

    def cond(st):
        return (st[0] < max_iter) & jnp.any(st[4])

    def body(st):
        k, x, r_tot, steps, active, stuck, f, G = st
        D, gn = _unit(G)
        r = (jnp.abs(f) / jnp.where(gn > 0, gn, 1.0) + stability)[:, None] * (-s0[:, None] * D)
        r_tot = jnp.where(active[:, None], r_tot + r, r_tot)
        x = jnp.where(active[:, None], X + (1.0 + overshoot) * r_tot, x)
        f_new, G_new = value_and_input_grad_kernel(params, x)
        done = f_new * s0 < 0
        dead = active & ~done & (jnp.linalg.norm(G_new, axis=-1) == 0)
        return (k + 1, x, r_tot, steps + active, active & ~done & ~dead, stuck | dead,
                jnp.where(active, f_new, f), jnp.where(active[:, None], G_new, G))

    init = (0, X, jnp.zeros_like(X), jnp.zeros((B,), jnp.int32), usable,
            jnp.zeros((B,), bool), f0, G0)
    _, x, _, steps, _, stuck, _, _ = jax.lax.while_loop(cond, body, init)
    flipped = apply(params, x) * f0 < 0
    x_adv = jnp.where(flipped[:, None], x, X)
    return finalize(params, X, x_adv, f0, usable, ~(gn0 > 0) | stuck, steps=steps)


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

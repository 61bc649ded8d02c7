"""The normalised gradient flow (chapter 3, Daniely & Shacham 2020).

One Euler step, :func:`flow_step`, is shared by the attack :func:`gradient_flow` (carried in
first-layer coordinates), the path recorder :func:`gradient_flow_path` (in input space) and
the chapter-3 checker, so the drawn path is the integrated one. The crossing inside the last
Euler segment is located by the attacks' one root finder,
:func:`~mini_adv.attacks._search._root_on_line`, with the rounding band of
:func:`~mini_adv.attacks._search.rounding_band`.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mini_adv.attacks._layers import _Chart, _chart_start, _tail_value_and_grad
from mini_adv.attacks._search import (FOUND, NONE, SEARCH, _Bracket, _Line, _push_outwards,
                                      _root_on_line, default_budget, rounding_band)
from mini_adv.attacks.result import AttackResult, finalize
from mini_adv.gradients import value_and_input_grad_kernel
from mini_adv.nets import MLPParams, Network, apply
from mini_adv.validation import (check_batch, check_fraction, check_number, check_params,
                                 check_size)


class FlowStep(NamedTuple):
    """One Euler step of the normalised flow, for every row: the new point, the step length h
    and the coefficient c with x_new = x + c·G (c = −sign(f(x₀))·h/‖∇f‖)."""

    x: jax.Array
    h: jax.Array
    coef: jax.Array


def flow_step(x: jax.Array, f: jax.Array, G: jax.Array, s0: jax.Array, h_min: jax.Array,
              step_fraction: float | jax.Array, remaining: jax.Array,
              grad_norm: jax.Array | None = None) -> FlowStep:
    """One Euler step of the normalised flow ẋ = −sign(f(x₀)) ∇f/‖∇f‖, batched over rows:

        h = min(max(α·|f(x)|/‖∇f(x)‖, h_min), remaining),   x_new = x − h·s₀·∇f/‖∇f‖

    (rows with ∇f = 0 do not move). Used by :func:`gradient_flow` (in the coordinates of
    its chart, with ``G`` the gradient in those coordinates and ``grad_norm`` = ‖∇f‖), by
    :func:`gradient_flow_path` (in input space) and by the chapter-3 checker.

    Args:
        x: ``(B, m)`` the points. f: ``(B,)`` f(x). G: ``(B, m)`` ∇f in the coordinates of x.
        s0: ``(B,)`` sign(f(x₀)). h_min: ``(B,)`` the floor of the step.
        step_fraction: α. remaining: ``(B,)`` the budget left (``inf`` for none).
        grad_norm: ``(B,)`` ‖∇f(x)‖ in input space (default ‖G‖, right when x is the input).

    Returns:
        :class:`FlowStep` ``(x_new, h, coef)``.
    """
    gn = jnp.linalg.norm(G, axis=-1) if grad_norm is None else grad_norm
    safe = jnp.where(gn > 0, gn, 1.0)
    h = jnp.minimum(jnp.maximum(step_fraction * jnp.abs(f) / safe, h_min), remaining)
    coef = -s0 * h / safe
    return FlowStep(x + coef[:, None] * G, h, coef)


def step_floor(min_step: float | jax.Array, f0: jax.Array, grad_norm0: jax.Array) -> jax.Array:
    """The floor h_min = μ·|f(x₀)|/‖∇f(x₀)‖ of the flow's steps (μ = ``min_step``; the
    floor is μ·|f(x₀)| where ∇f(x₀) = 0, where the flow does not move anyway), ``(B,)``."""
    return min_step * jnp.abs(f0) / jnp.where(grad_norm0 > 0, grad_norm0, 1.0)


class _FlowState(NamedTuple):
    """The Euler loop of :func:`gradient_flow_kernel`: iterate x = X + lift(w), z = z₁(x)."""

    k: jax.Array          # the iteration: f and ∇f are evaluated at z
    stepping: jax.Array   # (B,) the row's point z is new (a step was taken, or k = 0)
    crossed: jax.Array    # (B,) z is clearly across {f = 0}
    stuck: jax.Array      # (B,) ∇f vanished on the way
    w: jax.Array          # (B, m) the iterate in chart coordinates
    w_prev: jax.Array     # (B, m) the iterate before the last step
    z: jax.Array          # (B, h₁) the first layer at the iterate
    z_prev: jax.Array     # (B, h₁) ... and before the last step
    f_end: jax.Array      # (B,) f at the iterate across (rows that crossed)
    f_prev: jax.Array     # (B,) f before the last step
    xn2: jax.Array        # (B,) ‖x‖²
    xn2_prev: jax.Array   # (B,) ‖x‖² before the last step
    h_last: jax.Array     # (B,) the last step's length
    length: jax.Array     # (B,) the path length
    steps: jax.Array      # (B,) Euler steps taken
    f0: jax.Array         # (B,) f(x₀)
    gn0: jax.Array        # (B,) ‖∇f(x₀)‖
    h_min: jax.Array      # (B,) the floor of the step


def _euler_iteration(params: MLPParams, chart: _Chart, z0: jax.Array, max_distance: jax.Array,
                     step_fraction: jax.Array, min_step: jax.Array, max_steps: int,
                     st: _FlowState) -> _FlowState:
    """Evaluate f, ∇f at every row's iterate; rows clearly across stop, the others step.

    A crossing counts once s₀f < −:func:`rounding_band`: within a few ulps of {f = 0} the
    sign of f is rounding noise, and the flow simply takes another (minimum) step.
    """
    first = st.k == 0
    eps = jnp.finfo(z0.dtype).eps
    f, g1 = _tail_value_and_grad(params, st.z)
    v, _, gn = chart.direction(g1)
    f0, gn0 = jnp.where(first, f, st.f0), jnp.where(first, gn, st.gn0)
    h_min = jnp.where(first, step_floor(min_step, f, gn), st.h_min)
    s0 = jnp.sign(f0)
    cross = st.stepping & ~first & (f * s0 < -rounding_band(gn0, jnp.sqrt(st.xn2), eps))
    dead = st.stepping & ~cross & (gn == 0)
    go = (st.stepping & ~cross & ~dead & (st.length < max_distance) & (f0 != 0)
          & (st.steps < max_steps))
    step = flow_step(st.w, f, v, s0, h_min, step_fraction, max_distance - st.length, gn)
    c = jnp.where(go, step.coef, 0.0)
    # ‖x + c∇f‖² = ‖x‖² + 2c⟨xK₁, g₁⟩ + c²‖∇f‖²  (⟨x, g₁K₁ᵀ⟩ = ⟨xK₁, g₁⟩)
    b1 = 0.0 if params.biases is None else params.biases[0]
    xn2 = jnp.maximum(st.xn2 + 2 * c * jnp.sum((st.z - b1) * g1, axis=-1) + (c * gn) ** 2, 0.0)
    # the first layer at the new point is formed afresh from w (not z + c·u), so that
    # float rounding does not accumulate over the path's many steps
    w = jnp.where(go[:, None], step.x, st.w)
    return _FlowState(
        k=st.k + 1, stepping=go, crossed=st.crossed | cross, stuck=st.stuck | dead, w=w,
        w_prev=jnp.where(go[:, None], st.w, st.w_prev), z=z0 + chart.image(w),
        z_prev=jnp.where(go[:, None], st.z, st.z_prev), f_end=jnp.where(cross, f, st.f_end),
        f_prev=jnp.where(go, f, st.f_prev), xn2=xn2,
        xn2_prev=jnp.where(go, st.xn2, st.xn2_prev), h_last=jnp.where(go, step.h, st.h_last),
        length=st.length + jnp.where(go, step.h, 0.0), steps=st.steps + go, f0=f0, gn0=gn0,
        h_min=h_min)


def _last_segment_crossing(params: MLPParams, st: _FlowState, rtol: float | jax.Array,
                           max_bisection: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The first point clearly across on every crossed row's last segment [x_prev, x].

    The segment, of length h, seen from the first layer: z₁ = z₁(x_prev) + t·(z₁(x) −
    z₁(x_prev))/h, with g̃(t) = s₀f + band(‖x_prev‖) + band(1)·t ≥ s₀f + band(‖x_t‖), the
    step's own crossing rule; searched to width max(rtol·(path length), eps·‖x_prev‖).

    Returns:
        ``(t, found, tol)``, each ``(B,)``: t along the segment, and the target width.
    """
    eps = jnp.finfo(st.z.dtype).eps
    s0 = jnp.sign(st.f0)
    h = jnp.where(st.h_last > 0, st.h_last, 1.0)
    x_prev_norm = jnp.sqrt(st.xn2_prev)
    line = _Line(st.z_prev, (st.z - st.z_prev) / h[:, None], s0,
                 rounding_band(st.gn0, x_prev_norm, eps), rounding_band(st.gn0, 1.0, eps))
    start = _Bracket(lo=jnp.zeros_like(h), hi=st.h_last, g_lo=s0 * st.f_prev + line.margin0,
                     g_hi=s0 * st.f_end + line.margin0 + line.margin1 * st.h_last)
    tol = jnp.maximum(rtol * st.length, eps * x_prev_norm)
    phase = jnp.where(st.crossed, jnp.where(st.h_last <= tol, FOUND, SEARCH), NONE)
    t, found, _ = _root_on_line(params, line, start, phase, jnp.zeros((1,), h.dtype), tol, 0.0,
                                max_bisection)
    return t, found, tol


@partial(jax.jit, static_argnames=("max_steps", "max_bisection"))
def gradient_flow_kernel(params: MLPParams, X: jax.Array, max_distance: jax.Array,
                         step_fraction: float = 0.1, min_step: float = 1e-3,
                         max_steps: int = 1000, rtol: float = 1e-6,
                         max_bisection: int = 60) -> AttackResult:
    """Pure kernel of :func:`gradient_flow` (no input checks; vmap it over networks).

    1. *Euler steps* (one ``lax.while_loop``, one evaluation of f and ∇f per row and
       iteration, a single trace of the backward pass): the steps of :func:`flow_step`,
       carried in the coordinates of :class:`~mini_adv.attacks._layers._Chart` (each step
       costs one pass through the layers after the first, forward and backward, plus
       2·h₁² multiply-adds a row for the first layer in the first-layer chart, or 2·d·h₁ in
       the input chart), until the iterate is clearly across {f = 0}.
    2. *Crossing*: the first point clearly across on the last straight segment [x_prev, x],
       by the root finder of the ray search (forward passes only, four points a row and
       pass; ``_last_segment_crossing``).
    3. The crossing is formed in input space once and re-evaluated there; the rare row whose
       re-evaluation disagrees moves on along the segment until it agrees
       (:func:`~mini_adv.attacks._search._push_outwards`).

    Args:
        params: one network. X: ``(B, d)`` inputs (cast to the weights' dtype).
        max_distance: the path-length budget T. step_fraction: α. min_step: μ.
        max_steps: the most Euler steps (static). rtol: the crossing's accuracy relative to
            the path length. max_bisection: the most passes of the crossing search (static).

    Returns:
        :class:`AttackResult`.
    """
    X, chart, z0, zeros, false = _chart_start(params, X)
    B = X.shape[0]
    w0 = jnp.zeros((B, chart.size), X.dtype)
    xn2 = jnp.sum(X * X, axis=-1)
    init = _FlowState(k=jnp.asarray(0), stepping=jnp.ones((B,), bool), crossed=false,
                      stuck=false, w=w0, w_prev=w0, z=z0, z_prev=z0, f_end=zeros, f_prev=zeros,
                      xn2=xn2, xn2_prev=xn2, h_last=zeros, length=zeros,
                      steps=jnp.zeros((B,), jnp.int32), f0=zeros, gn0=zeros, h_min=zeros)
    st = jax.lax.while_loop(
        lambda st: (st.k <= max_steps) & jnp.any(st.stepping),
        lambda st: _euler_iteration(params, chart, z0, max_distance, step_fraction, min_step,
                                    max_steps, st), init)
    t, found, tol = _last_segment_crossing(params, st, rtol, max_bisection)

    # the crossing in input space: x_prev + t·D on the last segment (D = (x − x_prev)/h),
    # re-evaluated there (pushed on along D within the budget left at x_prev if it disagrees)
    h = jnp.where(st.h_last > 0, st.h_last, 1.0)
    x_prev = X + chart.lift(st.w_prev)
    D = chart.lift(st.w - st.w_prev) / h[:, None]
    f_end = apply(params, x_prev + t[:, None] * D)
    t, f_end = _push_outwards(params, x_prev, D, t, f_end, st.f0, found & (f_end * st.f0 >= 0),
                              max_distance - (st.length - st.h_last), tol)
    ok = found & (f_end * st.f0 < 0)
    usable = (st.gn0 > 0) & (st.f0 != 0)
    return finalize(params, X, jnp.where(ok[:, None], x_prev + t[:, None] * D, X), st.f0, usable,
                    ~(st.gn0 > 0) | st.stuck,
                    path_length=jnp.where(ok, st.length - st.h_last + t, 0.0),
                    steps=st.steps, f_adv=jnp.where(ok, f_end, st.f0))


def _flow_settings(step_fraction: object, min_step: object) -> tuple[float, float]:
    return check_fraction("step_fraction", step_fraction), check_fraction("min_step", min_step)


def gradient_flow(net: Network, X: jax.Array, *, max_distance: float | None = None,
                  step_fraction: float = 0.1, min_step: float = 1e-3, max_steps: int = 1000,
                  rtol: float = 1e-6) -> AttackResult:
    """Follow the normalised gradient flow until the sign of f changes (Daniely & Shacham 2020).

        ẋ(t) = −sign(f(x₀)) ∇f(x(t)) / ‖∇f(x(t))‖,     x(0) = x₀,

    a unit-speed curve, so the time t equals the path length. Along it d|f|/dt = −‖∇f‖:
    if ‖∇f‖ ≥ g_min on the way, the sign flips by time |f(x₀)|/g_min. Daniely & Shacham show
    that for random ReLU networks with shrinking widths this happens at t = O(‖x₀‖/√d).

    Integration (explicit Euler with adaptive steps, :func:`flow_step`): at x_k take the step

        h_k = max(α · |f(x_k)|/‖∇f(x_k)‖,  h_min),     h_min = ``min_step`` · |f(x₀)|/‖∇f(x₀)‖,

    i.e. a fraction α = ``step_fraction`` of the current linearised distance to the boundary,
    so the steps shrink as the boundary nears and the path is followed finely where it
    matters; the floor h_min makes the path cross instead of creeping up on {f = 0}.
    At the first step whose end has the opposite sign beyond float rounding noise
    (s₀f < −4·eps·‖∇f(x₀)‖·‖x‖, :func:`~mini_adv.attacks._search.rounding_band`), the first
    such point is located on that last straight segment by the secant search of
    :func:`ray_flip_distance` (accuracy ``rtol`` of the path length, not below eps·‖x‖).

    Jit-safe in ``X`` (with the default budget or a concrete one).

    Args:
        net: one network, a :class:`~mini_adv.nets.RandomMLP` or
            :class:`~mini_adv.nets.MLPParams`.
        X: ``(B, d)`` inputs (cast to the weights' dtype).
        max_distance: path-length budget T > 0 (default:
            :func:`~mini_adv.attacks.default_budget`, twice the largest ‖x‖ in the batch).
        step_fraction: α ∈ (0, 1], the step as a fraction of |f|/‖∇f‖.
        min_step: h_min as a fraction of the initial linearised distance, in (0, 1].
        max_steps: the most Euler steps per row, an integer ≥ 1.
        rtol: relative accuracy of the crossing along the path, in (0, 1).

    Returns:
        :class:`AttackResult` with ``path_length`` (the time t at the crossing; ≥
        ``delta_norm``, with equality for a straight path) and ``steps`` (Euler steps).
        Rows where ∇f vanishes at x₀ or on the way have status ``ZERO_DIRECTION``; no
        crossing within the budget gives ``NO_FLIP`` with x_adv = x.

    Raises:
        ValueError: for a stack of networks or weights with NaN/inf; a shape mismatch,
            integer or complex dtypes, non-finite inputs; ``max_distance`` ≤ 0,
            ``step_fraction`` or ``min_step`` outside (0, 1], ``max_steps`` < 1 or ``rtol``
            outside (0, 1).
    """
    params = check_params(net)
    X = check_batch(params, X)
    step_fraction, min_step = _flow_settings(step_fraction, min_step)
    max_steps = check_number("max_steps", max_steps, integer=True, low=0)
    rtol = check_number("rtol", rtol, low=0.0, high=1.0, strict_high=True)
    budget = (default_budget(X) if max_distance is None else
              jnp.asarray(check_number("max_distance", max_distance, low=0.0), X.dtype))
    return gradient_flow_kernel(params, X, budget, step_fraction=step_fraction,
                                min_step=min_step, max_steps=max_steps, rtol=rtol)


@partial(jax.jit, static_argnames=("n_steps",))
def gradient_flow_path_kernel(params: MLPParams, x: jax.Array, n_steps: int,
                              step_fraction: float = 0.1, min_step: float = 1e-3
                              ) -> tuple[jax.Array, jax.Array]:
    """Pure kernel of :func:`gradient_flow_path`: ``(points (n_steps + 1, d), crossed_at)``.

    The steps of :func:`flow_step` in input space, and the crossing rule of
    :func:`gradient_flow` (s₀f < −:func:`~mini_adv.attacks._search.rounding_band`).
    """
    x = x.astype(params.kernels[0].dtype)
    eps = jnp.finfo(x.dtype).eps
    f0, G0 = value_and_input_grad_kernel(params, x[None])
    s0 = jnp.sign(f0)
    gn0 = jnp.linalg.norm(G0, axis=-1)
    h_min = step_floor(min_step, f0, gn0)
    no_budget = jnp.full((1,), jnp.inf, x.dtype)

    def body(carry, k):
        xk, f, G, crossed_at = carry
        moving = crossed_at < 0
        x_new = jnp.where(moving, flow_step(xk, f, G, s0, h_min, step_fraction, no_budget).x, xk)
        f_new, G_new = value_and_input_grad_kernel(params, x_new)
        band = rounding_band(gn0[0], jnp.linalg.norm(x_new[0]), eps)
        crossed_at = jnp.where(moving & (f_new[0] * s0[0] < -band), k + 1, crossed_at)
        return (x_new, f_new, G_new, crossed_at), x_new[0]

    (_, _, _, crossed_at), pts = jax.lax.scan(body, (x[None], f0, G0, jnp.asarray(-1)),
                                              jnp.arange(n_steps))
    return jnp.concatenate([x[None], pts]), crossed_at


def gradient_flow_path(net: Network, x: jax.Array, *, n_steps: int = 400,
                       step_fraction: float = 0.1, min_step: float = 1e-3
                       ) -> tuple[jax.Array, int]:
    """The Euler path of :func:`gradient_flow` from one input, for drawing it.

    Records x_0 = x, x_1, …, x_K with the step rule of :func:`flow_step`; once a step
    ends clearly on the other side of {f = 0} (the crossing rule of :func:`gradient_flow`)
    the path stops there (later points repeat it). Not jit-safe (it returns the crossing
    step as a Python int); inside ``jax.jit`` call :func:`gradient_flow_path_kernel`.

    Args:
        net: one network. x: ``(d,)`` one input (cast to the weights' dtype).
        n_steps: K ≥ 1 recorded steps.
        step_fraction, min_step: as in :func:`gradient_flow`.

    Returns:
        ``(points, k)``: ``points`` of shape ``(K + 1, d)``, and the index k of the first
        point past the boundary (−1 if the path did not cross within K steps).

    Raises:
        ValueError: for a stack of networks or weights with NaN/inf; a shape mismatch,
            integer or complex dtypes, non-finite input or out-of-range settings.
    """
    params = check_params(net)
    x = check_batch(params, jnp.asarray(x)[None], "x")[0]
    n_steps = check_size("n_steps", n_steps)
    step_fraction, min_step = _flow_settings(step_fraction, min_step)
    pts, k = gradient_flow_path_kernel(params, x, n_steps, step_fraction, min_step)
    return pts, int(k)

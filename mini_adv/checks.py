"""Auto-checkers for the book's code exercises, one per chapter.

Each chapter has one code exercise: a function stub that the reader completes (in Colab or
locally), followed by a cell that runs its checker::

    def linear_flip_distance(w, X):
        raise NotImplementedError("your code here")

    result = checks.check_linear_flip_distance(linear_flip_distance)

A checker draws fresh random cases (several shapes and sizes; the key comes from
``os.urandom`` unless ``key=`` is given), runs the reader's function on each, compares the
answers with the package's own implementation, and prints a one-line verdict in plain
words: ``passed (N random cases)``, ``not implemented yet: ...``, or what is wrong (an
exception with its type and message, a wrong output shape or dtype, NaN/inf, the opposite
sign, a constant factor or a factor such as ‖w‖ that follows the case, ...), without
showing the solution. It returns the verdict as a :class:`CheckResult`. Mistakes in the
reader's function never raise; calling a checker with something that is not a function,
or with a key that is not a PRNG key, raises ``ValueError``.

====================================  ======================================================
:func:`check_linear_flip_distance`    chapter 1, exercise ``ex-ch1-code``
:func:`check_outside_band`            chapter 2, exercise ``ex-ch2-edges``
:func:`check_my_flow`                 chapter 3, exercise ``ex-ch3-euler``
:func:`check_my_moments`              chapter 4, exercise ``ex-ch4-quadrature``
:func:`check_ngd_direction`           chapter 5, exercise ``ex-ch5-logspace``
:func:`check_off_share`               chapter 6, exercise ``ex-ch6-off-share``
====================================  ======================================================

For graders: a failed verdict names the seed of its random cases; ``key=jax.random.key(seed)``
repeats them, and ``verbose=False`` returns the :class:`CheckResult` without printing.
"""

from __future__ import annotations

import dataclasses
import math
import os
import textwrap
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mini_adv import attacks, conditioning, data, gradients, margin, nets, rmt


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The verdict of a checker (the checker also prints ``message``, wrapped to 79 columns).

    Attributes:
        passed: whether the function agreed with the reference on every random case.
        message: the verdict in plain words, e.g. ``"passed (5 random cases)"``.
        cases: how many random cases were run and compared before the verdict.
    """

    passed: bool
    message: str
    cases: int

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------------------------------------
# the engine shared by the checkers
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Case:
    """One random case: the call ``fn(*args, **kwargs)`` and how to judge its answer.

    ``reference()`` computes the expected answer with the package (lazily, so that a stub
    that still raises costs nothing), or a :class:`_OneOf` of acceptable answers; an answer
    is right where
    |got − want| ≤ atol + rtol·|want| entrywise. ``factors`` name per-case quantities
    (‖w‖, √d, n, ...) that a wrong answer is often off by.
    """

    label: str
    args: tuple
    kwargs: Mapping[str, Any]
    reference: Callable[[], Any]
    rtol: float
    atol: Any
    factors: tuple[tuple[str, float], ...] = ()


@dataclasses.dataclass(frozen=True)
class _OneOf:
    """Several acceptable answers (a reference that is ambiguous within rounding noise);
    the last is the package's own."""

    answers: tuple[Any, ...]


@dataclasses.dataclass(frozen=True)
class _Outcome:
    index: int
    case: _Case
    got: np.ndarray
    want: np.ndarray

    @property
    def where(self) -> str:
        return f"case {self.index} ({self.case.label})"


Converter = Callable[[Any, _Case], "np.ndarray | str"]


def _check_function(fn: Any, checker: str, name: str) -> str:
    if not callable(fn):
        raise ValueError(f"{checker} expects your function itself, e.g. {checker}({name}); "
                         f"got {type(fn).__name__} {fn!r:.60}")
    return getattr(fn, "__name__", name)


def _key_and_seed(key: Any) -> tuple[jax.Array, int | None]:
    """The given PRNG key, or a fresh one from ``os.urandom`` together with its seed."""
    if key is None:
        seed = int.from_bytes(os.urandom(4), "little")
        return jax.random.key(seed), seed
    typed = isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    raw = isinstance(key, jax.Array) and key.dtype == jnp.uint32 and key.shape == (2,)
    if not ((typed and key.shape == ()) or raw):
        raise ValueError(f"key must be one PRNG key such as jax.random.key(0) (or None for "
                         f"fresh random cases); got {type(key).__name__} {key!r:.60}")
    return key, None


def _short(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= 240 else text[:237] + "..."


def _fmt(values: np.ndarray, digits: int) -> str:
    flat = [f"{v:.{digits}g}" for v in np.ravel(values)]
    return flat[0] if np.ndim(values) == 0 else "(" + ", ".join(flat) + ")"


def _fmt_pair(want: np.ndarray, got: np.ndarray) -> str:
    """'expected …, got …' with as many digits (4 to 9) as it takes to tell them apart."""
    digits = next((k for k in range(4, 10) if _fmt(want, k) != _fmt(got, k)), 9)
    return f"expected {_fmt(want, digits)}, got {_fmt(got, digits)}"


def _close(got: np.ndarray, want: np.ndarray, case: _Case) -> bool:
    return bool(np.all(np.abs(got - want) <= case.atol + case.rtol * np.abs(want)))


def _factor(o: _Outcome) -> float | None:
    """c if got = c·want (least squares, relative residual ≤ 1e-3), else None."""
    ww = float(np.sum(o.want * o.want))
    if ww == 0.0:
        return None
    c = float(np.sum(o.got * o.want)) / ww
    resid = float(np.linalg.norm(o.got - c * o.want))
    return c if c != 0.0 and resid <= 1e-3 * abs(c) * math.sqrt(ww) else None


def _detail(o: _Outcome) -> str:
    if o.got.size <= 3:
        return _fmt_pair(o.want, o.got)
    err = np.abs(o.got - o.want) / (o.case.atol + o.case.rtol * np.abs(o.want) + 1e-300)
    i = np.unravel_index(int(np.argmax(err)), o.got.shape)
    at = i[0] if len(i) == 1 else i
    return f"at entry {at} {_fmt_pair(o.want[i], o.got[i])}"


def _diagnose(bad: Sequence[_Outcome], total: int,
              alternatives: Sequence[tuple[str, Callable[[np.ndarray], np.ndarray]]]) -> str:
    """Say in plain words how the wrong answers relate to the right ones."""
    on = "on every case" if len(bad) == total else f"on {len(bad)} of {total} cases"

    def all_match(transform: Callable[[np.ndarray], np.ndarray]) -> bool:
        return all(_close(o.got, transform(o.want), o.case) for o in bad)

    for label, transform in alternatives:
        if all_match(transform):
            return f"{label} {on}"
    nonzero = all(np.any(o.want != 0) for o in bad)
    if nonzero and all_match(np.negative):
        return (f"the result has the opposite sign of the expected one {on} "
                "(check the sign convention)")
    if nonzero and all(_close(np.abs(o.got), np.abs(o.want), o.case) for o in bad):
        return f"the size is right but the sign is wrong in some entries {on}"
    if nonzero and all(np.all(o.got == 0) for o in bad):
        return f"returned zeros where non-zero values were expected {on}"
    ratios = [_factor(o) for o in bad]
    if all(r is not None for r in ratios):
        r = np.asarray(ratios)
        same_sign = bool(np.all(r > 0) or np.all(r < 0))
        constant = same_sign and np.max(np.abs(r)) / np.min(np.abs(r)) < 1.02
        if constant and abs(np.median(r) - 1) > 0.01:
            return f"off by a factor of about {np.median(r):.3g} {on}"
        for name, _ in bad[0].case.factors:
            q = np.asarray([dict(o.case.factors)[name] for o in bad])
            for power, label in ((1, name), (-1, f"1/{name}")):
                if np.allclose(r, q**power, rtol=0.02):
                    return f"off by a factor of {label} {on}"
        if len(bad) > 1 and all(o.got.size > 1 for o in bad) and np.min(np.abs(r - 1)) > 0.01:
            return (f"off by a factor that changes from case to case (from {np.min(r):.3g} to "
                    f"{np.max(r):.3g}) {on}")
    first = bad[0]
    return f"wrong values {on}; first, {first.where}: {_detail(first)}"


def _expected(reference: Any, got: np.ndarray, case: _Case) -> np.ndarray:
    """The expected answer. Of several acceptable ones: the one that ``got`` matches, else
    the one that ``−got`` matches (for the diagnosis of a sign error), else the last (the
    package's own), against which a wrong answer is diagnosed."""
    answers = reference.answers if isinstance(reference, _OneOf) else (reference,)
    wants = [np.asarray(a, dtype=np.float64) for a in answers]
    return next((w for w in wants if _close(got, w, case)),
                next((w for w in wants if _close(-got, w, case)), wants[-1]))


def _verdict(passed: bool, message: str, cases: int, verbose: bool) -> CheckResult:
    result = CheckResult(passed=passed, message=message, cases=cases)
    if verbose:  # wrapped to the width of a notebook cell
        print(textwrap.fill(result.message, width=79, subsequent_indent="  ",
                            break_long_words=False, break_on_hyphens=False))
    return result


def _run(fn: Callable[..., Any], name: str, cases: Iterable[_Case], convert: Converter, *,
         seed: int | None, verbose: bool,
         alternatives: Sequence[tuple[str, Callable[[np.ndarray], np.ndarray]]] = (),
         hint: Callable[[Sequence[_Outcome]], str | None] | None = None) -> CheckResult:
    """Run ``fn`` on every case, stop at the first error, then diagnose wrong values."""
    replay = ("" if seed is None
              else f" [seed {seed}: key=jax.random.key({seed}) repeats these cases]")

    def fail(message: str, count: int) -> CheckResult:
        return _verdict(False, f"failed: {message}{replay}", count, verbose)

    outcomes: list[_Outcome] = []
    for index, case in enumerate(cases, start=1):
        where = f"case {index} ({case.label})"
        try:
            value = fn(*case.args, **case.kwargs)
        except NotImplementedError:
            return _verdict(False, f"not implemented yet: {name} still raises "
                            "NotImplementedError", index - 1, verbose)
        except Exception as err:  # the reader's bug, reported in words
            return fail(f"{name} raised {type(err).__name__} on {where}: {_short(err)}", index - 1)
        got = convert(value, case)
        if isinstance(got, str):
            return fail(f"{where}: {got}", index - 1)
        if not np.all(np.isfinite(got)):
            return fail(f"{name} returned NaN or inf on {where}", index - 1)
        want = _expected(case.reference(), got, case)
        outcomes.append(_Outcome(index, case, got, want))
    if not outcomes:  # the checker's fault, never a pass: nothing was compared
        return _verdict(False, f"failed: the checker drew no usable random case for {name}, "
                        "so nothing was compared (a fault of the checker, not of your "
                        f"function; please report it){replay}", 0, verbose)
    bad = [o for o in outcomes if not _close(o.got, o.want, o.case)]
    if not bad:
        return _verdict(True, f"passed ({len(outcomes)} random cases)", len(outcomes), verbose)
    message = _diagnose(bad, len(outcomes), alternatives)
    extra = hint(outcomes) if hint is not None else None
    return fail(message if extra is None else f"{message}; {extra}", len(outcomes))


def _describe(value: Any) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"an array of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _array_of_shape(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray | str:
    """A float array of exactly ``shape`` from a jax/numpy array, or what is wrong with it."""
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        return f"returned {_describe(value)}; expected {what} (a jax or numpy array)"
    if tuple(value.shape) != shape:
        return f"wrong output shape: expected {shape}, got {tuple(value.shape)}"
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        return f"wrong dtype: expected floating-point numbers, got {arr.dtype}"
    return arr.astype(np.float64)


def _one_per_row(value: Any, case: _Case) -> np.ndarray | str:
    """The converter of a checker whose answer has one entry per row of its second argument."""
    B = case.args[1].shape[0]
    return _array_of_shape(value, (B,), f"an array of shape (B,) = ({B},)")


def _number(value: Any, what: str) -> np.ndarray | str:
    """One real number (Python, NumPy or a 0-d array) as a 0-d float array."""
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, str):
        return f"returned {value!r}; expected {what}"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        if tuple(value.shape) != ():
            return f"wrong output shape: expected a single number {what}, got {_describe(value)}"
        if np.asarray(value).dtype.kind not in "fiu":
            return f"wrong dtype: expected a real number, got {np.asarray(value).dtype}"
        return np.asarray(value, dtype=np.float64)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return np.asarray(float(value))
    return f"returned {_describe(value)}; expected {what}"


# ---------------------------------------------------------------------------------------------
# chapter 1: the linear flip distance
# ---------------------------------------------------------------------------------------------

_LINEAR_SHAPES = ((1, 2), (5, 3), (8, 20), (16, 100), (64, 500))  # (B, d)


def _linear_cases(key: jax.Array) -> Iterator[_Case]:
    for (B, d), k in zip(_LINEAR_SHAPES, jax.random.split(key, len(_LINEAR_SHAPES))):
        k_w, k_s, k_x, k_r = jax.random.split(k, 4)
        w = jnp.exp(jax.random.uniform(k_s, minval=-1.5, maxval=1.5)) * jax.random.normal(k_w, (d,))
        # rows of different norms, so that dividing by ‖x‖ is not a constant factor
        X = jax.random.normal(k_x, (B, d)) * jnp.exp(jax.random.uniform(k_r, (B, 1), minval=-1.0))
        model = nets.MLPParams(kernels=(w[:, None],), readout=jnp.ones(1), activation="identity")
        yield _Case(
            label=f"d = {d}, B = {B}", args=(w, X), kwargs={},
            reference=lambda model=model, X=X: gradients.linearized_distance(model, X),
            rtol=1e-4, atol=1e-5 * np.linalg.norm(np.asarray(X), axis=1),
            factors=(("‖w‖", float(jnp.linalg.norm(w))), ("√d", math.sqrt(d))))


def check_linear_flip_distance(fn: Callable[[jax.Array, jax.Array], jax.Array], *,
                               key: jax.Array | None = None, verbose: bool = True) -> CheckResult:
    """Check ``linear_flip_distance(w, X)`` of chapter 1 (exercise ``ex-ch1-code``).

    The function must return, for the linear model f(x) = ⟨w, x⟩ with ``w (d,)`` and inputs
    ``X (B, d)``, the flip distance of every row, shape ``(B,)``. It is compared with
    :func:`mini_adv.gradients.linearized_distance` on the same model written as a
    one-unit network with identity activation, on five random cases with d from 2 to 500,
    B from 1 to 64, random ‖w‖ and rows of different norms (relative tolerance 10⁻⁴).

    Detects: exceptions, not an array, wrong shape (e.g. ``(B, 1)``) or dtype, NaN/inf,
    the opposite sign, a wrong sign in some entries, a constant factor, and a factor of
    ‖w‖ or √d (or their inverses).

    Args:
        fn: the reader's function. key: PRNG key of the cases (default: fresh from
            ``os.urandom``). verbose: print the verdict.

    Returns:
        :class:`CheckResult`.

    Raises:
        ValueError: if ``fn`` is not callable or ``key`` is not a PRNG key.
    """
    name = _check_function(fn, "check_linear_flip_distance", "linear_flip_distance")
    key, seed = _key_and_seed(key)

    return _run(fn, name, _linear_cases(key), _one_per_row, seed=seed, verbose=verbose)


# ---------------------------------------------------------------------------------------------
# chapter 2: singular values outside the band
# ---------------------------------------------------------------------------------------------

# (m, n, draws, t): the first five differ only in the key; t < 0 narrows the band, so that
# some singular values lie outside it (with t = 2 hardly any do). The spectrum is rigid:
# over keys the count outside varies by about ±4 of 400 in the first setting.
_SAME_SHAPE = 5
_BAND_CASES = ((20, 80, 20, -2.0),) * _SAME_SHAPE + ((10, 10, 5, -0.5), (30, 60, 2, 0.0),
                                                     (5, 40, 4, 2.0), (40, 50, 2, -1.5))


def _band_reference(key: jax.Array, m: int, n: int, draws: int, t: float) -> jax.Array:
    s = rmt.gaussian_singular_values(key, m, n, draws)
    lo, hi = rmt.singular_value_edges(m, n)
    return jnp.mean((s < lo - t) | (s > hi + t))


def _band_cases(key: jax.Array) -> Iterator[_Case]:
    for (m, n, draws, t), k in zip(_BAND_CASES, jax.random.split(key, len(_BAND_CASES))):
        yield _Case(
            label=f"m = {m}, n = {n}, draws = {draws}, t = {t:g}", args=(k, m, n, draws),
            kwargs={"t": t},
            reference=lambda k=k, m=m, n=n, d=draws, t=t: _band_reference(k, m, n, d, t),
            # the same count exactly: the same key gives the same singular values
            rtol=0.0, atol=0.5 / (min(m, n) * draws),
            factors=(("min(m, n)·draws", float(min(m, n) * draws)),))


def _same_for_every_key(outcomes: Sequence[_Outcome]) -> str | None:
    same_shape = [o for o in outcomes if o.index <= _SAME_SHAPE]
    got = {float(o.got) for o in same_shape}
    want = {float(o.want) for o in same_shape}
    if len(same_shape) == _SAME_SHAPE and len(got) == 1 and got != {0.0} and len(want) > 1:
        return (f"it returns the same fraction for {_SAME_SHAPE} different keys: draw the "
                "matrices with the key argument")
    return None


def check_outside_band(fn: Callable[..., Any], *, key: jax.Array | None = None,
                       verbose: bool = True) -> CheckResult:
    """Check ``outside_band(key, m, n, draws, t=2.0)`` of chapter 2 (exercise ``ex-ch2-edges``).

    The function must return, as one number, the fraction of the singular values of
    ``draws`` independent m × n standard Gaussian matrices (m ≤ n), drawn by
    ``rmt.gaussian_singular_values(key, m, n, draws)``, that lie outside
    [√n − √m − t, √n + √m + t]. With the same key it must give exactly the package's
    fraction (:func:`mini_adv.rmt.gaussian_singular_values` and
    :func:`mini_adv.rmt.singular_value_edges`) on nine cases with t from −2 (a narrower
    band, so that the fraction is not simply 0) to 2.

    Detects: exceptions, not a single number, NaN/inf, the fraction inside instead of
    outside the band, a count instead of a fraction (a factor min(m, n)·draws), a constant
    factor, and a function that ignores its key.

    Args:
        fn: the reader's function. key: PRNG key of the cases (default: fresh from
            ``os.urandom``). verbose: print the verdict.

    Returns:
        :class:`CheckResult`.

    Raises:
        ValueError: if ``fn`` is not callable or ``key`` is not a PRNG key.
    """
    name = _check_function(fn, "check_outside_band", "outside_band")
    key, seed = _key_and_seed(key)

    def convert(value: Any, case: _Case) -> np.ndarray | str:
        return _number(value, "(a fraction between 0 and 1)")

    inside = ("it looks like the fraction inside the band, not outside", lambda want: 1.0 - want)
    return _run(fn, name, _band_cases(key), convert, seed=seed, verbose=verbose,
                alternatives=(inside,), hint=_same_for_every_key)


# ---------------------------------------------------------------------------------------------
# chapter 3: the Euler-integrated gradient flow
# ---------------------------------------------------------------------------------------------

# (widths, step fraction α, floor μ): shrinking widths, as in the chapter's theorem
_FLOW_CASES = (([24, 12, 6], 0.1, 1e-3), ([48, 16], 0.2, 1e-3), ([96, 32, 8], 0.05, 1e-2))
_FLOW_INPUTS = 2      # inputs per network
_FLOW_STEPS = 400     # Euler steps recorded by attacks.gradient_flow_path


@jax.jit
def _euler_steps(params: nets.MLPParams, points: jax.Array, step_fraction: jax.Array,
                 min_step: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(f, h, noise)`` at the points x_0, x_1, … of an Euler path: f(x_j), the step h_j
    that :func:`mini_adv.attacks.flow_step` takes from x_j (with the flow's floor
    :func:`mini_adv.attacks.flow.step_floor`), and the rounding band
    :func:`mini_adv.attacks.rounding_band` at x_j, below which the package does not count a
    sign change."""
    f, G = gradients.value_and_input_grad_kernel(params, points)
    gn = jnp.linalg.norm(G, axis=-1)
    h_min = attacks.flow.step_floor(min_step, f[:1], gn[:1])
    h = attacks.flow_step(points, f, G, jnp.sign(f[:1]), h_min, step_fraction,
                          jnp.full(f.shape, jnp.inf, points.dtype)).h
    eps = jnp.finfo(points.dtype).eps
    return f, h, attacks.rounding_band(gn[0], jnp.linalg.norm(points, axis=-1), eps)


def _flow_lengths(params: nets.MLPParams, x0: jax.Array, alpha: float, mu: float
                  ) -> tuple[float, ...] | None:
    """Path lengths h_0 + … + h_{k−1} of the Euler path from x0 that
    :func:`mini_adv.attacks.gradient_flow_path` records, at the step k where it crosses
    {f = 0}, with the steps h_j of :func:`mini_adv.attacks.flow_step`.

    The package counts the first step that ends clearly across, s·f(x_k) < −noise; a plain
    sign test may stop at an earlier step that ends within the noise, so those lengths are
    accepted too. ``None`` (the input is not used) if the path does not cross within the
    recorded steps, or if it is ill-conditioned: |f| fails to decrease at some step (the
    path zigzags along a ReLU kink), or a recorded step ‖x_{j+1} − x_j‖ is not h_j (a
    point on a kink, where ∇f depends on rounding). There, which side of the kink a point
    falls on, hence the path, depends on float rounding, and two correct loops may differ
    by percents.
    """
    points, k = attacks.gradient_flow_path(params, x0, n_steps=_FLOW_STEPS,
                                           step_fraction=alpha, min_step=mu)
    if k < 1:
        return None
    f, h, noise = (np.asarray(a, np.float64)[:k + 1]
                   for a in _euler_steps(params, points, alpha, mu))
    path = np.asarray(points[:k + 1], np.float64)
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    rounding = 16 * np.finfo(np.float32).eps * np.linalg.norm(path[1:], axis=1)
    zigzag = np.any(np.diff(np.abs(f[:k])) >= 0)
    if zigzag or np.any(np.abs(steps - h[:k]) > 1e-3 * h[:k] + rounding):
        return None
    lengths = np.cumsum(h[:k])                          # lengths[j − 1]: the length at x_j
    ends = np.flatnonzero(np.sign(f[0]) * f[1:] < noise[1:])
    return tuple(float(v) for v in lengths[ends]) or (float(lengths[-1]),)


def _flow_cases(key: jax.Array) -> Iterator[_Case]:
    for (widths, alpha, mu), k in zip(_FLOW_CASES, jax.random.split(key, len(_FLOW_CASES))):
        found: list[tuple[nets.MLPParams, jax.Array, tuple[float, ...]]] = []
        for attempt in range(10):  # a small network may not flip from most inputs: redraw it
            k_net, k_x = jax.random.split(jax.random.fold_in(k, attempt))
            params = nets.init_params(k_net, widths)
            X = data.sphere(k_x, 4 * _FLOW_INPUTS, widths[0])
            r0 = np.asarray(gradients.linearized_distance(params, X))
            for x0, r in zip(X, r0):
                # skip inputs within 10⁻³‖x‖ of the boundary: there the flow runs into
                # float32 rounding of f, and two correct implementations may step differently
                far = r > 1e-3 * float(jnp.linalg.norm(x0))
                lengths = _flow_lengths(params, x0, alpha, mu) if far else None
                if lengths is not None:
                    found.append((params, x0, lengths))
                if len(found) == _FLOW_INPUTS:
                    break
            if len(found) == _FLOW_INPUTS:
                break
        kwargs = {} if (alpha, mu) == (0.1, 1e-3) else {"alpha": alpha, "mu": mu}
        for params, x0, lengths in found:
            yield _Case(
                label=f"widths {widths}, alpha = {alpha:g}, mu = {mu:g}", args=(params, x0),
                kwargs=kwargs, reference=lambda lengths=lengths: _OneOf(lengths),
                # the chapter's loop agrees to about 10⁻⁶ relative (median 3·10⁻⁷, largest
                # 1.6·10⁻⁵ in 2160 cases); ignoring mu changes the length by 5·10⁻⁵ to
                # 10⁻² (smallest 5·10⁻⁵, next 1.3·10⁻⁴, in 480 cases)
                rtol=1e-4, atol=0.0, factors=(("‖x0‖", float(jnp.linalg.norm(x0))),))


def _settings_ignored(outcomes: Sequence[_Outcome]) -> str | None:
    bad = [o for o in outcomes if not _close(o.got, o.want, o.case)]
    if bad and all(o.case.kwargs for o in bad):
        return ("only the cases with alpha or mu other than the defaults are wrong: does "
                "your function use the alpha and mu that it is given?")
    return None


def check_my_flow(fn: Callable[..., Any], *, key: jax.Array | None = None,
                  verbose: bool = True) -> CheckResult:
    """Check ``my_flow(params, x0, alpha=0.1, mu=1e-3, max_steps=1000)`` of chapter 3.

    Exercise ``ex-ch3-euler``.

    The function must follow the normalised gradient flow from one input ``x0 (d,)`` of the
    network ``params`` (an :class:`~mini_adv.nets.MLPParams`) with the Euler steps of the
    chapter's algorithm (:func:`mini_adv.attacks.flow_step`) and return the path length
    h_0 + … + h_{k−1} (one number) at the first step k that ends across the boundary
    {f = 0}, or ``None`` if ``max_steps`` steps do not cross. The reference is the length
    of the path that :func:`mini_adv.attacks.gradient_flow_path` records up to its first
    step across (the integration of :func:`mini_adv.attacks.gradient_flow` before it
    locates the crossing inside the last step), on six random inputs of three random ReLU
    networks with shrinking widths (d = 24 to 96) and three settings of α and μ; relative
    tolerance 10⁻⁴. A step that ends within float32 rounding noise of the boundary may
    count as the crossing or not; inputs whose path zigzags along a ReLU kink (where
    rounding decides the path) are not used.

    Detects: exceptions, not a number, ``None`` where the flow crosses (e.g. steps that move
    f away from 0), NaN/inf, the opposite sign, a constant factor or a factor ‖x0‖, and
    ignored ``alpha``/``mu`` arguments.

    Args:
        fn: the reader's function. key: PRNG key of the cases (default: fresh from
            ``os.urandom``). verbose: print the verdict.

    Returns:
        :class:`CheckResult`.

    Raises:
        ValueError: if ``fn`` is not callable or ``key`` is not a PRNG key.
    """
    name = _check_function(fn, "check_my_flow", "my_flow")
    key, seed = _key_and_seed(key)

    def convert(value: Any, case: _Case) -> np.ndarray | str:
        if value is None:
            length = case.reference().answers[-1]
            settings = (f"alpha = {case.kwargs['alpha']:g} and mu = {case.kwargs['mu']:g}"
                        if case.kwargs else "the default alpha and mu")
            return (f"returned None (no crossing), but with {settings} the flow crosses the "
                    f"boundary after a path of length {length:.4g}: does every step move f "
                    "towards 0, with the step sizes that alpha and mu set?")
        return _number(value, "(the path length)")

    return _run(fn, name, _flow_cases(key), convert, seed=seed, verbose=verbose,
                hint=_settings_ignored)


# ---------------------------------------------------------------------------------------------
# chapter 4: Gauss–Hermite moments
# ---------------------------------------------------------------------------------------------


def _activation(family: str, a: float, b: float, c: float) -> tuple[str, Callable[[Any], Any]]:
    """A random member of a family of activations, and its formula."""
    if family == "tanh":
        return f"{a:.2f}·tanh({b:.2f}z {c:+.2f})", lambda z: a * jnp.tanh(b * z + c)
    if family == "sin":
        return f"{a:.2f}·sin({b:.2f}z {c:+.2f})", lambda z: a * jnp.sin(b * z + c)
    if family == "poly":
        return f"{c:.2f} {a:+.2f}z {b - 1:+.2f}z²", lambda z: c + a * z + (b - 1) * z * z
    if family == "relu":
        return f"{a:.2f}·relu(z)", lambda z: a * jax.nn.relu(z)
    return f"{a:.2f}·softplus({b:.2f}z {c:+.2f})", lambda z: a * jax.nn.softplus(b * z + c)


_MOMENT_CASES = (("tanh", 40), ("sin", 60), ("poly", 40), ("relu", 60), ("softplus", 40),
                 ("tanh", 60))


def _moment_cases(key: jax.Array) -> Iterator[_Case]:
    for (family, n), k in zip(_MOMENT_CASES, jax.random.split(key, len(_MOMENT_CASES))):
        u = np.asarray(jax.random.uniform(k, (3,)), dtype=float)
        # tanh(bz) has poles at z = ±iπ/(2b): with b ≤ 0.8, 40 nodes are accurate to 10⁻⁶
        b_max = 0.8 if family == "tanh" else 2.0
        a, b, c = 0.5 + 1.5 * u[0], 0.3 + (b_max - 0.3) * u[1], 2.0 * u[2] - 1.0
        formula, sigma = _activation(family, a, b, c)
        yield _Case(
            label=f"σ(z) = {formula}, n = {n}", args=(sigma,), kwargs={} if n == 40 else {"n": n},
            reference=lambda sigma=sigma: conditioning.gaussian_moments(sigma),
            rtol=1e-4, atol=1e-6)


def check_my_moments(fn: Callable[..., Any], *, key: jax.Array | None = None,
                     verbose: bool = True) -> CheckResult:
    """Check ``my_moments(sigma, n=40)`` of chapter 4 (exercise ``ex-ch4-quadrature``).

    The function must return the pair (E σ(G)², E σ'(G)²) for G ~ N(0, 1), computed by
    Gauss–Hermite quadrature with ``n`` nodes, for a scalar function ``sigma`` that
    ``jax.grad`` can differentiate. It is compared with
    :func:`mini_adv.conditioning.gaussian_moments` (200 nodes, float64) on six random
    activations (scaled and shifted tanh, sin, softplus, a quadratic, a scaled ReLU) with
    n = 40 and 60, relative tolerance 10⁻⁴.

    Detects: exceptions, not a pair of numbers, NaN/inf, the two numbers in the wrong order,
    a constant factor (such as weights that do not sum to 1), the opposite sign.

    Args:
        fn: the reader's function. key: PRNG key of the cases (default: fresh from
            ``os.urandom``). verbose: print the verdict.

    Returns:
        :class:`CheckResult`.

    Raises:
        ValueError: if ``fn`` is not callable or ``key`` is not a PRNG key.
    """
    name = _check_function(fn, "check_my_moments", "my_moments")
    key, seed = _key_and_seed(key)
    what = "a pair (E σ(G)², E σ'(G)²) of two numbers"

    def convert(value: Any, case: _Case) -> np.ndarray | str:
        if isinstance(value, (tuple, list)):
            if len(value) != 2:
                return f"returned a {type(value).__name__} of length {len(value)}; expected {what}"
            parts = [_number(v, "in each entry of the pair") for v in value]
            bad = [p for p in parts if isinstance(p, str)]
            return bad[0] if bad else np.asarray([float(p) for p in parts])
        if hasattr(value, "shape") and tuple(value.shape) == (2,):
            return _array_of_shape(value, (2,), what)
        return f"returned {_describe(value)}; expected {what}"

    swapped = ("the two numbers are in the wrong order", lambda want: want[::-1])
    return _run(fn, name, _moment_cases(key), convert, seed=seed, verbose=verbose,
                alternatives=(swapped,))


# ---------------------------------------------------------------------------------------------
# chapter 5: the normalised-gradient direction in log space
# ---------------------------------------------------------------------------------------------


def _ngd_reference(params: nets.MLPParams, X: jax.Array, y: jax.Array) -> np.ndarray:
    """∇L/L of the logistic loss by :func:`mini_adv.margin.normalized_gradient` (log space,
    finite for every margin), flattened in the order of ``jax.tree.leaves(params)``."""
    g = margin.normalized_gradient(params, X, y, "logistic")
    return np.concatenate([np.ravel(np.asarray(a, np.float64)) for a in jax.tree.leaves(g)])


# (d, n, width, bias): a random network (margins of order 1, of both signs), checked with
# log_space=True and False; then a network that fits the data (every margin positive)
# with its parameters multiplied by 30 (margins × 900: the loss underflows), log space only
_NGD_RANDOM = ((20, 6, 8, False), (50, 10, 16, True))
_NGD_FITTED = ((60, 6), (100, 12))


def _ngd_cases(key: jax.Array) -> Iterator[_Case]:
    keys = jax.random.split(key, len(_NGD_RANDOM) + len(_NGD_FITTED))
    for (d, n, width, bias), k in zip(_NGD_RANDOM, keys):
        k_net, k_b, k_data = jax.random.split(k, 3)
        params = margin.init_two_layer(k_net, d, width, bias=bias, init_scale=1.0)
        if bias:
            params = params.replace(biases=(0.5 * jax.random.normal(k_b, (width,)),))
        X, y = data.nearly_orthogonal(k_data, n, d)
        for log_space in (True, False):
            yield _Case(
                label=f"random network, d = {d}, n = {n}, width {width}, log_space={log_space}",
                args=(params, X, y), kwargs={} if log_space else {"log_space": False},
                reference=lambda p=params, X=X, y=y: _ngd_reference(p, X, y),
                rtol=1e-3, atol=1e-5, factors=(("n", float(n)),))
    for (d, n), k in zip(_NGD_FITTED, keys[len(_NGD_RANDOM):]):
        big, X, y = _fitted_network(k, d, n)
        ref = _ngd_reference(big, X, y)
        yield _Case(
            label=f"a network that fits the data with its parameters × 30 (margins above "
                  f"{float(jnp.min(y * nets.apply(big, X))):.0f}), d = {d}, n = {n}",
            args=(big, X, y), kwargs={}, reference=lambda ref=ref: ref,
            rtol=1e-3, atol=1e-5 * float(np.max(np.abs(ref))), factors=(("n", float(n)),))


def _fitted_network(key: jax.Array, d: int, n: int
                    ) -> tuple[nets.MLPParams, jax.Array, jax.Array]:
    """Data and a generic network near :func:`mini_adv.margin.robust_network` that fits
    them, with its parameters × 30: every margin above 200, so the loss underflows.

    Raises:
        RuntimeError: if 10 draws give no such network (the checker then fails loudly
            instead of certifying a function on a case that does not test it).
    """
    for attempt in range(10):  # two nearly parallel points of different classes: redraw
        k_data, k_noise = jax.random.split(jax.random.fold_in(key, attempt))
        X, y = data.nearly_orthogonal(k_data, n, d)
        leaves, tree = jax.tree.flatten(margin.robust_params(X, y))
        noise = jax.random.split(k_noise, len(leaves))
        big = jax.tree.unflatten(tree, [30.0 * a * (1.0 + 0.05 * jax.random.normal(kk, a.shape))
                                        for a, kk in zip(leaves, noise)])
        if float(jnp.min(y * nets.apply(big, X))) > 200.0:
            return big, X, y
    raise RuntimeError(f"could not draw a network that fits its data with every margin above "
                       f"200 (d = {d}, n = {n}, 10 attempts); a fault of the checker")


def check_ngd_direction(fn: Callable[..., Any], *, key: jax.Array | None = None,
                        verbose: bool = True) -> CheckResult:
    """Check ``ngd_direction(params, X, y, log_space=True)`` of chapter 5 (``ex-ch5-logspace``).

    The function must return ∇_θL/L for the mean logistic loss
    L(θ) = (1/n) Σ_i log(1 + exp(−y_i N_θ(x_i))) of a two-layer network ``params`` (an
    :class:`~mini_adv.nets.MLPParams`) on ``X (n, d)`` with labels ``y (n,)`` in {±1}, as a
    pytree of the same structure as ``params``; naively with ``log_space=False``, stably
    in log space (step 3 of the chapter's normalised-GD algorithm) by default. Both are
    compared with the log-space direction of :func:`mini_adv.margin.train` on two random
    networks (margins of order 1); the log-space version also on two networks that fit
    their data with parameters multiplied by 30, where the loss underflows to 0 and the
    naive quotient is NaN (relative tolerance 10⁻³).

    Detects: exceptions, not a pytree like ``params`` (or leaves of the wrong shape),
    NaN/inf (e.g. the naive quotient for large margins), the opposite sign, a constant
    factor, a factor n or 1/n (a sum where a mean belongs, or the reverse).

    Args:
        fn: the reader's function. key: PRNG key of the cases (default: fresh from
            ``os.urandom``). verbose: print the verdict.

    Returns:
        :class:`CheckResult`.

    Raises:
        ValueError: if ``fn`` is not callable or ``key`` is not a PRNG key.
    """
    name = _check_function(fn, "check_ngd_direction", "ngd_direction")
    key, seed = _key_and_seed(key)

    def convert(value: Any, case: _Case) -> np.ndarray | str:
        params = case.args[0]
        what = "a pytree like params (an MLPParams with the same kernels, biases and readout)"
        try:
            tree = jax.tree.structure(value)
        except Exception:  # not a pytree at all
            return f"returned {_describe(value)}; expected {what}"
        if tree != jax.tree.structure(params):
            return f"returned {_describe(value)} with another structure; expected {what}"
        parts = []
        for got, want in zip(jax.tree.leaves(value), jax.tree.leaves(params)):
            arr = _array_of_shape(got, tuple(want.shape), f"a leaf of shape {tuple(want.shape)}")
            if isinstance(arr, str):
                return arr
            parts.append(np.ravel(arr))
        return np.concatenate(parts)

    return _run(fn, name, _ngd_cases(key), convert, seed=seed, verbose=verbose)


# ---------------------------------------------------------------------------------------------
# chapter 6: the share of the gradient off the data subspace
# ---------------------------------------------------------------------------------------------

_OFF_SHAPES = ((3, 1, 32, 8), (10, 2, 16, 5), (40, 5, 64, 20), (200, 20, 128, 12),
               (64, 64, 32, 6))  # (D, d, width, B): the last has no room off the subspace


def _off_share_reference(params: nets.MLPParams, Z: jax.Array, P: jax.Array) -> np.ndarray:
    from mini_adv.realdata import split_perturbation

    _, g = gradients.value_and_input_grad(params, Z)
    on, off = split_perturbation(g, P)
    return off / np.hypot(on, off)


def _off_share_cases(key: jax.Array) -> Iterator[_Case]:
    for (D, d, m, B), k in zip(_OFF_SHAPES, jax.random.split(key, len(_OFF_SHAPES))):
        for attempt in range(10):  # an input where every unit is off has ∇f = 0: redraw
            k_net, k_x, k_q = jax.random.split(jax.random.fold_in(k, attempt), 3)
            params = nets.init_params(k_net, [D, m])
            Z, P = data.embed(data.sphere(k_x, B, d), D, k_q)
            if bool(jnp.all(jnp.linalg.norm(gradients.value_and_input_grad(params, Z)[1], axis=1) > 0)):
                break
        else:
            raise RuntimeError(f"no network with a non-zero gradient at every input (D = {D}); "
                               f"a fault of the checker")
        yield _Case(
            label=f"D = {D}, subspace of dimension {d}, width {m}, B = {B}", args=(params, Z, P),
            kwargs={}, reference=lambda p=params, Z=Z, P=P: _off_share_reference(p, Z, P),
            rtol=1e-3, atol=1e-5, factors=(("√(D/d)", math.sqrt(D / d)),))


def check_off_share(fn: Callable[..., Any], *, key: jax.Array | None = None,
                    verbose: bool = True) -> CheckResult:
    """Check ``off_share(params, Z, P)`` of chapter 6 (exercise ``ex-ch6-off-share``).

    The function must return, for a network ``params`` (an :class:`~mini_adv.nets.MLPParams`)
    on ℝ^D, inputs ``Z (B, D)`` and the orthogonal projector ``P (D, D)`` onto a subspace,
    the share of each input gradient off the subspace, ‖(I − P)∇f(z)‖/‖∇f(z)‖, shape ``(B,)``.
    It is compared with the gradients of :func:`mini_adv.gradients.value_and_input_grad` split
    by :func:`mini_adv.realdata.split_perturbation`, on five random two-layer networks with
    D from 3 to 200 and inputs on subspaces of dimension 1 to 64 (:func:`mini_adv.data.embed`;
    in the last case the subspace is all of ℝ^D and the share is 0), relative tolerance 10⁻³.

    Detects: exceptions, not an array, a wrong shape or dtype, NaN/inf, the share on the
    subspace instead of off it (its values differ), the squared share, a constant factor or a
    factor √(D/d).

    Args:
        fn: the reader's function. key: PRNG key of the cases (default: fresh from
            ``os.urandom``). verbose: print the verdict.

    Returns:
        :class:`CheckResult`.

    Raises:
        ValueError: if ``fn`` is not callable or ``key`` is not a PRNG key.
    """
    name = _check_function(fn, "check_off_share", "off_share")
    key, seed = _key_and_seed(key)

    return _run(fn, name, _off_share_cases(key), _one_per_row, seed=seed, verbose=verbose)

"""Input validation shared by every public function of :mod:`mini_adv`.

One place for the package's rules on what a caller may pass, so that every function says the
same thing about the same mistake:

* **sizes and numbers** may be Python, NumPy or 0-d JAX scalars (``5``, ``np.int64(5)``,
  ``jnp.asarray(5.0)``); booleans, NaN and infinities are rejected;
* **dtype policy**: inputs are cast to the floating dtype of the network's parameters (so
  float64 weights under ``jax.enable_x64`` accept float32 inputs, and bfloat16 inputs are
  computed in the parameters' precision); integer, boolean and complex inputs are rejected, since
  a gradient with respect to them is meaningless; parameters themselves must be float32 or
  float64;
* **finiteness**: NaN/inf in inputs or weights raise instead of propagating into silent NaNs;
* **single against stacked networks**: the public attacks take one network; a stack of N
  networks (``init_params(key, widths, n=N)``) goes through :func:`mini_adv.parallel.map_networks`.

Every check raises :class:`ValueError` with what was wrong and what to do. Under a JAX trace
(inside ``jax.jit``) the value checks on arrays are skipped (the values are unknown), the shape
and dtype checks still apply.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PARAM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
"""The floating dtypes that network parameters may have."""


def _scalar(name: str, value: Any) -> Any:
    """``value`` as a Python scalar if it is a Python, NumPy or concrete 0-d array scalar."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number, not a boolean; got {value!r}")
    if isinstance(value, numbers.Number):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (np.ndarray, jax.Array)):
        if isinstance(value, jax.core.Tracer):
            raise ValueError(f"{name} must be a concrete number, not a traced value; pass it "
                             f"as a static Python number, or call the package's *_kernel "
                             f"function inside jax.jit")
        if value.ndim != 0:
            raise ValueError(f"{name} must be a single number; got an array of shape "
                             f"{tuple(value.shape)}")
        if value.dtype == bool:
            raise ValueError(f"{name} must be a number, not a boolean; got {value!r}")
        return np.asarray(value).item()
    raise ValueError(f"{name} must be a number; got {type(value).__name__} {value!r}")


def check_number(name: str, value: Any, *, integer: bool = False, low: float | None = None,
                 high: float | None = None, strict_low: bool = True,
                 strict_high: bool = False) -> float | int:
    """Return ``value`` as a Python ``float`` (or ``int`` with ``integer=True``) after checking it.

    Accepts Python, NumPy and 0-d JAX scalars. ``low``/``high`` bound it (``low < v`` by
    default, ``v ≤ high``); NaN and infinities are always rejected.

    Raises:
        ValueError: naming ``name``, the rule and the value, e.g.
            ``max_distance must be a finite number > 0; got -1.0``.
    """
    kind = "an integer" if integer else "a finite number"
    rule = kind
    if low is not None:
        rule += f" {'>' if strict_low else '≥'} {low:g}"
    if high is not None:
        rule += f"{' and' if low is not None else ''} {'<' if strict_high else '≤'} {high:g}"
    v = _scalar(name, value)
    if integer:
        if isinstance(v, float) and v.is_integer():
            raise ValueError(f"{name} must be {rule}; got the float {v!r} (pass an integer)")
        if not isinstance(v, int):
            raise ValueError(f"{name} must be {rule}; got {v!r}")
    else:
        if isinstance(v, complex):
            raise ValueError(f"{name} must be {rule}, not complex; got {v!r}")
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"{name} must be {rule}; got {v!r}")
    if low is not None and not (v > low if strict_low else v >= low):
        raise ValueError(f"{name} must be {rule}; got {v!r}")
    if high is not None and not (v < high if strict_high else v <= high):
        raise ValueError(f"{name} must be {rule}; got {v!r}")
    return v


def check_size(name: str, value: Any) -> int:
    """Return ``value`` as an ``int`` if it is a positive integer (Python, NumPy or 0-d JAX).

    Raises:
        ValueError: e.g. ``n must be a positive integer; got 0``.
    """
    try:
        return int(check_number(name, value, integer=True, low=1, strict_low=False))
    except ValueError:
        raise ValueError(f"{name} must be a positive integer; got {value!r}") from None


def check_fraction(name: str, value: Any) -> float:
    """Return ``value`` as a ``float`` in (0, 1] (step fractions, minimum steps, ratios).

    Raises:
        ValueError: e.g. ``step_fraction must lie in (0, 1]; got 1.5``.
    """
    try:
        return float(check_number(name, value, low=0.0, high=1.0))
    except ValueError:
        raise ValueError(f"{name} must lie in (0, 1]; got {value!r}") from None


def check_widths(widths: Any) -> tuple[int, ...]:
    """Return ``[d, h_1, ..., h_L]`` as a tuple of ints (NumPy and JAX integers accepted).

    Raises:
        ValueError: if it is not a sequence of at least two positive integers.
    """
    if isinstance(widths, (np.ndarray, jax.Array)):
        widths = np.asarray(widths).tolist() if np.asarray(widths).ndim == 1 else widths
    if isinstance(widths, (str, bytes)) or not isinstance(widths, (Sequence, np.ndarray)):
        raise ValueError(f"widths must be a sequence [d, h1, ..., hL]; got {widths!r}")
    widths = list(widths)
    if len(widths) < 2:
        raise ValueError(f"widths must have at least 2 entries [d, h1, ...] (input dimension, "
                         f"then hidden widths); got {widths}")
    try:
        return tuple(check_size("width", w) for w in widths)
    except ValueError:
        raise ValueError(f"every width must be a positive integer; got {widths}") from None


def check_key(key: Any, name: str = "key") -> jax.Array:
    """Return ``key`` if it is a JAX PRNG key (``jax.random.key(seed)`` or a raw uint32[2]).

    Raises:
        ValueError: for an integer seed or anything else, saying to pass ``jax.random.key(seed)``.
    """
    if isinstance(key, jax.Array):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.ndim == 0:
            return key
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return key
    raise ValueError(f"{name} must be a JAX PRNG key, e.g. jax.random.key(0); got "
                     f"{type(key).__name__} {key!r}")


def check_finite(name: str, x: Any) -> None:
    """Raise if the concrete array ``x`` holds NaN or ±inf (skipped under a trace)."""
    if isinstance(x, jax.core.Tracer):
        return
    a = jnp.asarray(x)
    if jnp.issubdtype(a.dtype, jnp.inexact) and not _concrete_all_finite([a]):
        raise ValueError(f"{name} contains NaN or inf; check how it was computed")


def check_float_array(name: str, x: Any, dtype: Any = None) -> jax.Array:
    """Return ``x`` as a real floating JAX array (cast to ``dtype`` if given), finite.

    Raises:
        ValueError: for integer, boolean or complex input (a gradient with respect to it is
            meaningless: pass floats, e.g. ``x.astype(jnp.float32)``), or NaN/inf.
    """
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not isinstance(x, (np.ndarray, jax.Array, np.generic)):
        raise ValueError(f"{name} must be an array; got {type(x).__name__}")
    kind = np.dtype(x.dtype) if not isinstance(x, jax.Array) else x.dtype
    if not jnp.issubdtype(kind, jnp.floating):
        raise ValueError(f"{name} must hold real floating-point numbers; got dtype {kind}. "
                         f"Cast it first, e.g. {name}.astype(jnp.float32)")
    a = jnp.asarray(x) if dtype is None else jnp.asarray(x).astype(dtype)
    check_finite(name, a)
    return a


def params_dtype(params: Any) -> np.dtype:
    """The floating dtype of a network's parameters (that of its first kernel)."""
    return np.dtype(params.kernels[0].dtype)


def check_params(params: Any, *, stacked: bool | None = False, name: str = "net") -> Any:
    """Return the pure form (:class:`mini_adv.nets.MLPParams`) of ``params`` after checking it.

    Args:
        params: an ``MLPParams``, or a module with a ``params()`` method returning one.
        stacked: ``False`` for one network (the public attacks), ``True`` for a stack of N
            networks (the many-network experiments), ``None`` for either.
        name: the argument's name in messages.

    Raises:
        ValueError: for anything that is not a network; a stack where one network is expected
            (vmap the ``*_kernel`` function or use ``parallel.map_networks``) or the reverse;
            weights that are not float32/float64, of mixed dtypes, or hold NaN/inf.
    """
    from mini_adv.nets import as_params  # nets imports this module

    p = as_params(params)
    is_stack = p.readout.ndim == 2
    if stacked is False and is_stack:
        raise ValueError(f"{name} is a stack of {p.readout.shape[0]} networks; this function takes "
                         f"one network. Index one (jax.tree.map(lambda a: a[i], params)), vmap "
                         f"the *_kernel function, or use parallel.map_networks")
    if stacked is True and not is_stack:
        raise ValueError(f"{name} must be a stack of N networks, as returned by "
                         f"nets.init_params(key, widths, n=N); got a single network")
    leaves = jax.tree.leaves(p)
    dtypes = {np.dtype(a.dtype) for a in leaves}
    if not dtypes <= set(PARAM_DTYPES):
        raise ValueError(f"the weights of {name} must be float32 or float64; got "
                         f"{sorted(map(str, dtypes))}. Cast them with "
                         f"jax.tree.map(lambda a: a.astype(jnp.float32), params)")
    if len(dtypes) > 1:
        raise ValueError(f"the weights of {name} mix dtypes {sorted(map(str, dtypes))}; draw them "
                         f"under one precision or cast them all to one dtype")
    concrete = [a for a in leaves if not isinstance(a, jax.core.Tracer)]
    if concrete and not _concrete_all_finite(concrete):
        raise ValueError(f"the weights of {name} contain NaN or inf; check how the network "
                         f"was trained or loaded")
    return p


@jax.jit
def _all_finite(arrays: list[jax.Array]) -> jax.Array:
    """Whether every entry of every array is finite: one compiled reduction, one host sync."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in arrays]))


def _on_host(a: Any) -> bool:
    """Whether ``a`` lives in host memory: a NumPy array, or a JAX array on CPU devices only."""
    if not isinstance(a, jax.Array):
        return True
    try:
        return all(dev.platform == "cpu" for dev in a.devices())
    except Exception:   # a tracer or an array without committed devices
        return False


def _concrete_all_finite(arrays: list[Any]) -> bool:
    """Whether every entry of every array is finite. Arrays in host memory are read by NumPy
    (no copy, and nothing to compile for each new shape); arrays on an accelerator by the
    compiled :func:`_all_finite` (one reduction, one host sync, no transfer of the weights).
    Also while a ``jax.jit`` trace is active, where the compiled reduction would be staged
    into the trace: then NumPy reads the values."""
    if all(_on_host(a) for a in arrays):
        return all(bool(np.all(np.isfinite(np.asarray(a)))) for a in arrays)
    ok = _all_finite(arrays)
    if isinstance(ok, jax.core.Tracer):
        return all(bool(np.all(np.isfinite(np.asarray(a)))) for a in arrays)
    return bool(ok)


def check_batch(params: Any, X: Any, name: str = "X") -> jax.Array:
    """Return ``X`` as a ``(B, d)`` array in the parameters' dtype, checked.

    The dtype policy of the package: floating inputs of any precision are cast to the dtype of
    ``params``' weights; integer, boolean and complex inputs are rejected.

    Raises:
        ValueError: with the expected and actual shape, for B = 0, for a non-floating dtype, or
            if X holds NaN/inf.
    """
    X = check_float_array(name, X, params_dtype(params))
    d = params.widths[0]
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"{name} must have shape (B, d) with d = {d}; got shape {tuple(X.shape)}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (B = 0); pass at least one input")
    return X


def check_stacked_batch(params: Any, X: Any, name: str = "X") -> jax.Array:
    """Return ``X`` as an ``(N, B, d)`` array (one batch per network of a stack), checked.

    Raises:
        ValueError: as :func:`check_batch`, with the shape ``(N, B, d)``.
    """
    X = check_float_array(name, X, params_dtype(params))
    N, d = params.readout.shape[0], params.widths[0]
    if X.ndim != 3 or X.shape[0] != N or X.shape[2] != d or X.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, B, d) = ({N}, B, {d}) with B ≥ 1 (one batch "
                         f"of inputs per network); got shape {tuple(X.shape)}")
    return X

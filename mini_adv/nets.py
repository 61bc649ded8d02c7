"""Random fully connected networks with scalar output (the object of every theorem).

    f(x) = aᵀ σ(W_L σ(⋯ σ(W_1 x + b_1) ⋯) + b_L),     W_ℓ ∈ ℝ^{h_ℓ × h_{ℓ−1}}, a ∈ ℝ^{h_L},

with i.i.d. *untruncated* Gaussian entries (W_ℓ)_{ij} ~ N(0, scale²/h_{ℓ−1}), a mean-zero
readout a_j ~ N(0, 1/h_L) (or ±1/√h_L), and no biases unless asked for. This is the setting
of Daniely & Shacham (2020), Bartlett et al. (2021) and Montanari & Wu (2022). Flax's layer
defaults (biases on, truncated LeCun-normal kernels) are *not* this setting, so the weights
are drawn here explicitly.

Two forms of the same network:

* :class:`MLPParams` + :func:`apply` — a pytree of arrays and a pure function of
  ``(params, x)``. Kernels under ``jax.jit``/``jax.vmap`` take this form; a fresh random draw
  reuses the compiled code, and ``init_params(key, widths, n=N)`` draws N independent
  networks as one stacked pytree (leading axis N on every leaf).
* :class:`RandomMLP` — a Flax NNX module holding the same arrays as ``nnx.Param``\\ s,
  for readers who think in modules. ``net.params()`` gives its pure form.

Kernels are stored ``(fan_in, fan_out)`` so a layer computes ``h @ K`` (row-vector
convention): ``K_ℓ`` is ``W_ℓᵀ``. :func:`forward` is the one forward pass of the package: it
returns f and the pre-activations z_ℓ; :func:`apply` is its first output.

**Dtype policy** (the package's, see :mod:`mini_adv.validation`): *inputs are cast to the
parameters' dtype*. The weights are drawn in JAX's default float dtype, all of them, readout
included: float32, or float64 under ``jax.enable_x64`` (:func:`mini_adv.runtime.float64`). An
input of another floating precision (bfloat16, or float32 into float64 weights) is cast to the
weights' dtype before the first layer, so f and ∇f come out in the weights' dtype. Integer,
boolean and complex inputs are rejected with a ``ValueError`` (cast them first, e.g.
``x.astype(jnp.float32)``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from mini_adv.activations import Activation, get_activation
from mini_adv.validation import check_finite, check_key, check_number, check_size, check_widths

WEIGHT_SCALES: dict[str, float] = {"he": math.sqrt(2.0), "lecun": 1.0}
"""Named weight scales. Entries have standard deviation ``scale/√fan_in``; He gives variance 2/fan_in."""

READOUTS = ("gaussian", "rademacher")


@struct.dataclass
class MLPParams:
    """Parameters of a scalar-output MLP as a pytree (the pure form of a network).

    Attributes:
        kernels: ``K_ℓ`` of shape ``(h_{ℓ−1}, h_ℓ)``, one per hidden layer.
        readout: ``a`` of shape ``(h_L,)``.
        biases: ``b_ℓ`` of shape ``(h_ℓ,)`` per hidden layer, or ``None`` (bias-free).
        activation: name in :data:`mini_adv.activations.ACTIVATIONS` or a callable; static
            (part of the tree structure), so jitted kernels specialise on it.
        weight_scale: the scale c the kernels were drawn with, (W_ℓ)_{ij} ~ N(0, c²/h_{ℓ−1})
            (√2 for ``"he"``, 1.0 for ``"lecun"``, see :func:`resolve_weight_scale`), set by
            :func:`init_params` and :class:`RandomMLP`; ``None`` when unknown (parameters
            built by hand or trained). Static, like ``activation``: it labels the law the
            weights were drawn from, so a prediction that depends on it (chapter 4's one-step
            flip law) can read it instead of being told. Two networks with different scales
            have different tree structures (``jax.tree.map`` over both fails; a jitted kernel
            compiles once per scale).

    A stacked pytree (from ``init_params(..., n=N)``) has an extra leading axis ``N`` on
    every array; use ``jax.vmap(apply, in_axes=(0, None))`` to evaluate all N networks.
    """

    kernels: tuple[jax.Array, ...]
    readout: jax.Array
    biases: tuple[jax.Array, ...] | None = None
    activation: str | Activation = struct.field(pytree_node=False, default="relu")
    weight_scale: float | None = struct.field(pytree_node=False, default=None)

    @property
    def widths(self) -> tuple[int, ...]:
        """``(d, h_1, ..., h_L)``."""
        return (self.kernels[0].shape[-2],) + tuple(k.shape[-1] for k in self.kernels)

    @property
    def num_networks(self) -> int | None:
        """N for a stacked pytree of N networks, ``None`` for a single network."""
        return None if self.readout.ndim == 1 else self.readout.shape[0]


def resolve_weight_scale(weight_scale: str | float) -> float:
    """The scale c of a weight-scale setting: ``"he"`` → √2, ``"lecun"`` → 1, a number → itself.

    Args:
        weight_scale: a name in :data:`WEIGHT_SCALES` or a positive number (Python, NumPy or
            0-d JAX scalar).

    Returns:
        c as a Python float: the entries of W_ℓ have standard deviation c/√h_{ℓ−1}.

    Raises:
        ValueError: for an unknown name, or a number that is not finite and > 0.
    """
    if isinstance(weight_scale, str):
        if weight_scale not in WEIGHT_SCALES:
            raise ValueError(
                f"unknown weight_scale {weight_scale!r}; use 'he', 'lecun' or a positive float"
            )
        return WEIGHT_SCALES[weight_scale]
    try:
        return float(check_number("weight_scale", weight_scale, low=0.0))
    except ValueError:
        raise ValueError(f"weight_scale must be 'he', 'lecun' or a positive float, "
                         f"got {weight_scale!r}") from None




def _draw(key: jax.Array, widths: tuple[int, ...], scale: float, bias: bool,
          readout: str, activation: str | Activation) -> MLPParams:
    keys = jax.random.split(key, 2 * len(widths))
    kernels = tuple(
        jax.random.normal(keys[i], (fan_in, fan_out)) * (scale / math.sqrt(fan_in))
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:]))
    )
    dtype = kernels[0].dtype   # every weight in the kernels' (the default float) dtype
    biases = (
        tuple(jax.random.normal(keys[len(widths) + i], (h,), dtype) for i, h in enumerate(widths[1:]))
        if bias else None
    )
    h_last = widths[-1]
    if readout == "gaussian":
        a = jax.random.normal(keys[len(widths) - 1], (h_last,), dtype) / math.sqrt(h_last)
    else:
        a = jax.random.rademacher(keys[len(widths) - 1], (h_last,), dtype=dtype) / math.sqrt(h_last)
    return MLPParams(kernels=kernels, readout=a, biases=biases, activation=activation,
                     weight_scale=scale)


def init_params(key: jax.Array, widths: Sequence[int], *, activation: str | Activation = "relu",
                weight_scale: str | float = "he", bias: bool = False, readout: str = "gaussian",
                n: int | None = None) -> MLPParams:
    """Draw a random network (or ``n`` independent ones, stacked) in pure form.

    (W_ℓ)_{ij} ~ N(0, scale²/h_{ℓ−1}) untruncated; readout a_j ~ N(0, 1/h_L) for
    ``"gaussian"`` or uniform on {±1/√h_L} for ``"rademacher"`` (both mean-zero, as
    Montanari & Wu and Bubeck et al. assume); biases, if any, b_ℓ ~ N(0, I). Every weight is
    drawn in JAX's default float dtype: float32, or float64 under ``jax.enable_x64``.

    Args:
        key: PRNG key (``jax.random.key(seed)``); the same key gives the same network.
        widths: ``[d, h_1, ..., h_L]``: input dimension, then hidden widths (L ≥ 1); a list,
            a tuple or a 1-D integer array (NumPy and JAX integers accepted).
        activation: name or callable, see :mod:`mini_adv.activations`.
        weight_scale: ``"he"`` (scale² = 2, keeps ‖h_ℓ‖ ≈ ‖x‖ for ReLU), ``"lecun"``
            (scale² = 1) or a positive number ``scale``; recorded as
            :attr:`MLPParams.weight_scale`.
        bias: add Gaussian biases (breaks positive homogeneity).
        readout: ``"gaussian"`` or ``"rademacher"``.
        n: if given, draw ``n`` independent networks stacked along a leading axis (a Python,
            NumPy or 0-d JAX integer).

    Returns:
        An :class:`MLPParams` with ``kernels[ℓ−1]`` of shape ``(h_{ℓ−1}, h_ℓ)``, ``readout``
        of shape ``(h_L,)`` and ``weight_scale`` = scale; with ``n``, every leaf has an extra
        leading axis ``n``, and network i is ``init_params(jax.random.split(key, n)[i], ...)``.

    Raises:
        ValueError: for a key that is not a PRNG key (an int seed: pass
            ``jax.random.key(seed)``), widths with fewer than 2 entries or non-positive
            entries, an unknown activation, weight scale or readout, or a non-positive ``n``.
    """
    key = check_key(key)
    widths = check_widths(widths)
    get_activation(activation)  # validates the name
    scale = resolve_weight_scale(weight_scale)
    if readout not in READOUTS:
        raise ValueError(f"unknown readout {readout!r}; use one of {READOUTS}")
    draw = lambda k: _draw(k, widths, scale, bias, readout, activation)  # noqa: E731
    if n is None:
        return draw(key)
    n = check_size("n (number of networks)", n)
    return jax.vmap(draw)(jax.random.split(key, n))


def _as_input(params: MLPParams, x: Any, caller: str) -> jax.Array:
    """``x`` as a ``(d,)`` or ``(B, d)`` array in the parameters' dtype (static checks only)."""
    if params.readout.ndim != 1:
        raise ValueError(
            f"{caller}() evaluates one network, but params holds a stack of "
            f"{params.readout.shape[0]} networks; use jax.vmap({caller}, in_axes=(0, None))"
        )
    if not isinstance(x, jax.Array):   # lists, tuples, NumPy arrays
        try:
            x = jnp.asarray(x)
        except (TypeError, ValueError):
            raise ValueError(f"input must be an array of shape (d,) or (B, d); got "
                             f"{type(x).__name__}") from None
    d = params.kernels[0].shape[0]
    if x.ndim not in (1, 2) or x.shape[-1] != d:
        raise ValueError(f"input must have shape (d,) or (B, d) with d = {d}; got shape {tuple(x.shape)}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"input must hold real floating-point numbers; got dtype {x.dtype}. "
                         f"Cast it first, e.g. x.astype(jnp.float32)")
    dtype = params.kernels[0].dtype
    return x if x.dtype == dtype else x.astype(dtype)


def _check_finite_cause(params: MLPParams, x: jax.Array, f: jax.Array) -> None:
    """Outside a trace, if f is not finite because of NaN/inf in x or the weights, raise.

    One reduction on f in the usual (finite) case; x and the weights are inspected only when f
    is not finite, and a finite network whose output overflows is not an error.
    """
    if isinstance(f, jax.core.Tracer) or np.isfinite(np.asarray(f)).all():
        return
    check_finite("input x", x)
    for leaf in jax.tree.leaves(params):
        if not bool(jnp.all(jnp.isfinite(leaf))):
            raise ValueError("the network's weights contain NaN or inf; check how they were "
                             "computed or loaded")


def _forward(params: MLPParams, x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    sigma = get_activation(params.activation)
    zs, h = [], x
    for i, k in enumerate(params.kernels):
        z = h @ k
        if params.biases is not None:
            z = z + params.biases[i]
        zs.append(z)
        h = sigma(z)
    return h @ params.readout, tuple(zs)


def forward(params: MLPParams, x: Any) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """The forward pass of one network: f(x) and every pre-activation.

        z_1 = x K_1 + b_1,   z_ℓ = σ(z_{ℓ−1}) K_ℓ + b_ℓ  (ℓ = 2, …, L),   f(x) = aᵀ σ(z_L)

    (b_ℓ = 0 for a bias-free network; K_ℓ = W_ℓᵀ, see the module docstring). The hidden
    activations are h_ℓ = σ(z_ℓ). Pure and jit-able; under ``jax.jit`` the pre-activations
    that are not used cost nothing (XLA drops them), and :func:`apply` is this pass's f.

    Args:
        params: one network (for a stack, ``jax.vmap(forward, in_axes=(0, None))``).
        x: ``(d,)`` or ``(B, d)`` floating input (an array-like is converted), cast to the
            weights' dtype (the dtype policy of the module docstring).

    Returns:
        ``(f, zs)``: f of shape ``()`` for ``x (d,)`` and ``(B,)`` for ``x (B, d)``, in the
        weights' dtype; ``zs`` a tuple of the L pre-activations, ``zs[ℓ−1]`` of shape
        ``x.shape[:-1] + (h_ℓ,)``.

    Raises:
        ValueError: as :func:`apply`.
    """
    x = _as_input(params, x, "forward")
    f, zs = _forward(params, x)
    _check_finite_cause(params, x, f)
    return f, zs


def apply(params: MLPParams, x: Any) -> jax.Array:
    """Evaluate f(x) = aᵀ σ(⋯ σ(x K_1 + b_1) ⋯ K_L + b_L) for one network.

    The f of :func:`forward` (the same operations in the same order). Pure and jit-able.

    Args:
        params: one network (for a stack, ``jax.vmap(apply, in_axes=(0, None))``).
        x: ``(d,)`` or ``(B, d)`` floating input (an array-like is converted), cast to the
            weights' dtype (the dtype policy of the module docstring).

    Returns:
        f(x): a scalar for ``x (d,)``, shape ``(B,)`` for ``x (B, d)``, in the weights' dtype.

    Raises:
        ValueError: if ``x`` is not 1-D or 2-D with last axis ``d``, is not floating, or is not
            an array-like; if ``params`` is a stacked pytree (these are static checks, so they
            also hold under ``jit``); and, outside a trace, if f is not finite because ``x`` or
            the weights hold NaN/inf (this costs one reduction on f; ``x`` and the weights are
            inspected only when f is not finite).
    """
    x = _as_input(params, x, "apply")
    f = _forward(params, x)[0]
    _check_finite_cause(params, x, f)
    return f


class RandomMLP(nnx.Module):
    """RandomMLP(widths, *, activation="relu", weight_scale="he", bias=False, readout="gaussian", rngs)

    A random scalar-output MLP as a Flax NNX module (see the module docstring for f); the
    arguments are those of :func:`init_params`, with ``rngs`` an ``nnx.Rngs`` whose
    ``params`` stream draws the weights. ``net(x)`` maps ``(d,)`` to a scalar and ``(B, d)``
    to ``(B,)``, with the checks and dtype policy of :func:`apply`; ``net.params()`` returns the
    pure :class:`MLPParams` form that the jitted kernels take.

    Example:
        >>> net = RandomMLP([100, 50, 25], rngs=nnx.Rngs(0))
        >>> net(jnp.ones((8, 100))).shape
        (8,)
    """

    def __init__(self, widths: Sequence[int], *, activation: str | Activation = "relu",
                 weight_scale: str | float = "he", bias: bool = False,
                 readout: str = "gaussian", rngs: nnx.Rngs):
        widths = check_widths(widths)
        p = init_params(rngs.params(), widths, activation=activation,
                        weight_scale=weight_scale, bias=bias, readout=readout)
        self.widths = widths
        self.activation = activation
        self.weight_scale = p.weight_scale
        self.depth = len(p.kernels)
        for i, k in enumerate(p.kernels):
            setattr(self, f"kernel_{i}", nnx.Param(k))
        if p.biases is not None:
            for i, b in enumerate(p.biases):
                setattr(self, f"bias_{i}", nnx.Param(b))
        self.has_bias = p.biases is not None
        self.readout = nnx.Param(p.readout)

    def params(self) -> MLPParams:
        """The pure form: current parameter values as an :class:`MLPParams` pytree."""
        kernels = tuple(getattr(self, f"kernel_{i}")[...] for i in range(self.depth))
        biases = (tuple(getattr(self, f"bias_{i}")[...] for i in range(self.depth))
                  if self.has_bias else None)
        return MLPParams(kernels=kernels, readout=self.readout[...], biases=biases,
                         activation=self.activation, weight_scale=self.weight_scale)

    def __call__(self, x: jax.Array) -> jax.Array:
        """f(x) as :func:`apply` computes it (same checks, same dtype policy)."""
        return apply(self.params(), x)


Network = RandomMLP | MLPParams
"""What the kernels accept: a module with a ``params()`` method, or its pure form."""


def as_params(net: Any) -> MLPParams:
    """Return the pure form of ``net`` (an :class:`MLPParams`, or anything with ``.params()``).

    Raises:
        ValueError: if ``net`` is neither.
    """
    if isinstance(net, MLPParams):
        return net
    params: Callable[[], MLPParams] | None = getattr(net, "params", None)
    if callable(params):
        p = params()
        if isinstance(p, MLPParams):
            return p
    raise ValueError(
        f"expected a network (RandomMLP or MLPParams, or a module with a params() method "
        f"returning MLPParams); got {type(net).__name__}"
    )

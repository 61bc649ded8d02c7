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
convention): ``K_ℓ`` is ``W_ℓᵀ``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx, struct

from mini_adv.activations import Activation, get_activation

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

    A stacked pytree (from ``init_params(..., n=N)``) has an extra leading axis ``N`` on
    every array; use ``jax.vmap(apply, in_axes=(0, None))`` to evaluate all N networks.
    """

    kernels: tuple[jax.Array, ...]
    readout: jax.Array
    biases: tuple[jax.Array, ...] | None = None
    activation: str | Activation = struct.field(pytree_node=False, default="relu")

    @property
    def widths(self) -> tuple[int, ...]:
        """``(d, h_1, ..., h_L)``."""
        return (self.kernels[0].shape[-2],) + tuple(k.shape[-1] for k in self.kernels)

    @property
    def num_networks(self) -> int | None:
        """N for a stacked pytree of N networks, ``None`` for a single network."""
        return None if self.readout.ndim == 1 else self.readout.shape[0]


def _check_widths(widths: Sequence[int]) -> tuple[int, ...]:
    try:
        widths = tuple(widths)
    except TypeError:
        raise ValueError(f"widths must be a sequence [d, h1, ..., hL], got {widths!r}") from None
    if len(widths) < 2:
        raise ValueError(
            f"widths must have at least 2 entries [d, h1, ...] (input dimension, then hidden "
            f"widths); got {list(widths)}"
        )
    for w in widths:
        if not isinstance(w, int) or isinstance(w, bool) or w < 1:
            raise ValueError(f"every width must be a positive integer; got {list(widths)}")
    return widths


def _resolve_scale(weight_scale: str | float) -> float:
    if isinstance(weight_scale, str):
        if weight_scale not in WEIGHT_SCALES:
            raise ValueError(
                f"unknown weight_scale {weight_scale!r}; use 'he', 'lecun' or a positive float"
            )
        return WEIGHT_SCALES[weight_scale]
    if not (isinstance(weight_scale, (int, float)) and math.isfinite(weight_scale) and weight_scale > 0):
        raise ValueError(f"weight_scale must be 'he', 'lecun' or a positive float, got {weight_scale!r}")
    return float(weight_scale)


def _draw(key: jax.Array, widths: tuple[int, ...], scale: float, bias: bool,
          readout: str, activation: str | Activation) -> MLPParams:
    keys = jax.random.split(key, 2 * len(widths))
    kernels = tuple(
        jax.random.normal(keys[i], (fan_in, fan_out)) * (scale / math.sqrt(fan_in))
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:]))
    )
    biases = (
        tuple(jax.random.normal(keys[len(widths) + i], (h,)) for i, h in enumerate(widths[1:]))
        if bias else None
    )
    h_last = widths[-1]
    if readout == "gaussian":
        a = jax.random.normal(keys[len(widths) - 1], (h_last,)) / math.sqrt(h_last)
    else:
        a = jax.random.rademacher(keys[len(widths) - 1], (h_last,), dtype=jnp.float32) / math.sqrt(h_last)
    return MLPParams(kernels=kernels, readout=a, biases=biases, activation=activation)


def init_params(key: jax.Array, widths: Sequence[int], *, activation: str | Activation = "relu",
                weight_scale: str | float = "he", bias: bool = False, readout: str = "gaussian",
                n: int | None = None) -> MLPParams:
    """Draw a random network (or ``n`` independent ones, stacked) in pure form.

    (W_ℓ)_{ij} ~ N(0, scale²/h_{ℓ−1}) untruncated; readout a_j ~ N(0, 1/h_L) for
    ``"gaussian"`` or uniform on {±1/√h_L} for ``"rademacher"`` (both mean-zero, as
    Montanari & Wu and Bubeck et al. assume); biases, if any, b_ℓ ~ N(0, I).

    Args:
        key: PRNG key; the same key gives the same network.
        widths: ``[d, h_1, ..., h_L]``: input dimension, then hidden widths (L ≥ 1).
        activation: name or callable, see :mod:`mini_adv.activations`.
        weight_scale: ``"he"`` (scale² = 2, keeps ‖h_ℓ‖ ≈ ‖x‖ for ReLU), ``"lecun"``
            (scale² = 1) or a positive float ``scale``.
        bias: add Gaussian biases (breaks positive homogeneity).
        readout: ``"gaussian"`` or ``"rademacher"``.
        n: if given, draw ``n`` independent networks stacked along a leading axis.

    Raises:
        ValueError: for widths with fewer than 2 entries or non-positive entries, an unknown
            activation, weight scale or readout, or a non-positive ``n``.
    """
    widths = _check_widths(widths)
    get_activation(activation)  # validates the name
    scale = _resolve_scale(weight_scale)
    if readout not in READOUTS:
        raise ValueError(f"unknown readout {readout!r}; use one of {READOUTS}")
    draw = lambda k: _draw(k, widths, scale, bias, readout, activation)  # noqa: E731
    if n is None:
        return draw(key)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n (number of networks) must be a positive integer, got {n!r}")
    return jax.vmap(draw)(jax.random.split(key, n))


def apply(params: MLPParams, x: jax.Array) -> jax.Array:
    """Evaluate f(x) = aᵀ σ(⋯ σ(x K_1 + b_1) ⋯ K_L + b_L) for one network.

    Pure and jit-able. ``x`` of shape ``(d,)`` gives a scalar; ``(B, d)`` gives ``(B,)``.
    Shapes are checked (statically, so also under ``jit``); finiteness is checked by the
    public entry points that take concrete arrays.

    Raises:
        ValueError: if ``x`` is not 1-D or 2-D with last axis ``d``, or if ``params`` is a
            stacked pytree (vmap over its leading axis instead).
    """
    if params.readout.ndim != 1:
        raise ValueError(
            "apply() evaluates one network, but params holds a stack of "
            f"{params.readout.shape[0]} networks; use jax.vmap(apply, in_axes=(0, None))"
        )
    d = params.kernels[0].shape[0]
    if x.ndim not in (1, 2) or x.shape[-1] != d:
        raise ValueError(f"input must have shape (d,) or (B, d) with d = {d}; got shape {tuple(x.shape)}")
    sigma = get_activation(params.activation)
    h = x
    for i, k in enumerate(params.kernels):
        h = h @ k
        if params.biases is not None:
            h = h + params.biases[i]
        h = sigma(h)
    return h @ params.readout


def check_finite(name: str, x: Any) -> None:
    """Raise ``ValueError`` if a concrete array holds NaN or ±inf (tracers are skipped)."""
    if isinstance(x, jax.core.Tracer):
        return
    if not bool(jnp.all(jnp.isfinite(jnp.asarray(x)))):
        raise ValueError(f"{name} contains NaN or inf; pass finite values")


class RandomMLP(nnx.Module):
    """RandomMLP(widths, *, activation="relu", weight_scale="he", bias=False, readout="gaussian", rngs)

    A random scalar-output MLP as a Flax NNX module (see the module docstring for f); the
    arguments are those of :func:`init_params`, with ``rngs`` an ``nnx.Rngs`` whose
    ``params`` stream draws the weights. ``net(x)`` maps ``(d,)`` to a scalar and ``(B, d)`` to ``(B,)``; ``net.params()``
    returns the pure :class:`MLPParams` form that the jitted kernels take.

    Example:
        >>> net = RandomMLP([100, 50, 25], rngs=nnx.Rngs(0))
        >>> net(jnp.ones((8, 100))).shape
        (8,)
    """

    def __init__(self, widths: Sequence[int], *, activation: str | Activation = "relu",
                 weight_scale: str | float = "he", bias: bool = False,
                 readout: str = "gaussian", rngs: nnx.Rngs):
        p = init_params(rngs.params(), widths, activation=activation,
                        weight_scale=weight_scale, bias=bias, readout=readout)
        self.widths = tuple(widths)
        self.activation = activation
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
                         activation=self.activation)

    def __call__(self, x: jax.Array) -> jax.Array:
        check_finite("input x", x)
        return apply(self.params(), jnp.asarray(x))


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


def check_batch(params: MLPParams, X: Any, name: str = "X") -> jax.Array:
    """Validate a batch of inputs for one network: shape ``(B, d)`` and finite values.

    Raises:
        ValueError: with the expected and actual shape, or if X holds NaN/inf.
    """
    X = jnp.asarray(X)
    d = params.widths[0]
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"{name} must have shape (B, d) with d = {d}; got shape {tuple(X.shape)}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (B = 0); pass at least one input")
    check_finite(name, X)
    return X

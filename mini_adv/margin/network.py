"""The depth-2 ReLU network of chapter 5, N_θ(x) = Σ_j v_j σ(w_jᵀx + b_j), and its data.

:func:`init_two_layer` draws the small initialisation in pure form
(:class:`~mini_adv.nets.MLPParams`); :class:`TwoLayerNet` is the same network as a Flax NNX
module. The checks of a labelled data set (X, y) with y ∈ {±1} live here too, since every
tool of the chapter takes a network and such data.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mini_adv.nets import MLPParams, Network, apply
from mini_adv.validation import (check_batch, check_finite, check_float_array, check_key,
                                 check_number, check_params, check_size)


def _check_labels(y: Any, n: int, dtype: Any, n_name: str = "X") -> jax.Array:
    """y as an ``(n,)`` array of ``dtype`` after checking that every entry is ±1."""
    if not isinstance(y, (np.ndarray, jax.Array, list, tuple)):
        raise ValueError(f"y must be an array of labels ±1; got {type(y).__name__}")
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y must have shape (n,) = ({n},) to match the {n} rows of {n_name}; "
                         f"got shape {tuple(y.shape)}")
    check_finite("y", y)
    if not bool(jnp.all((y == 1) | (y == -1))):
        bad = np.unique(np.asarray(y)[~np.isin(np.asarray(y), (-1, 1))])[:5]
        raise ValueError(f"labels y must be ±1 (e.g. 2·label − 1 for 0/1 labels); got values {bad}")
    return y.astype(dtype)


def _check_data(X: Any, y: Any) -> tuple[jax.Array, jax.Array]:
    """Validate a labelled data set: X (n, d) real floating and finite, y (n,) with entries ±1."""
    X = check_float_array("X", X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must have shape (n, d) with n, d ≥ 1; got shape {tuple(X.shape)}")
    return X, _check_labels(y, X.shape[0], X.dtype)


def _check_two_layer(params: MLPParams) -> None:
    if len(params.kernels) != 1 or params.readout.ndim != 1:
        raise ValueError("expected one depth-2 network N(x) = Σ_j v_j σ(w_jᵀx + b_j) (a TwoLayerNet "
                         f"or MLPParams with one kernel); got {len(params.kernels)} hidden layers")
    if params.activation != "relu":
        raise ValueError(f"the max-margin tools assume σ = ReLU; got activation {params.activation!r}")


def _params_and_data(net: Network, X: Any, y: Any) -> tuple[MLPParams, jax.Array, jax.Array]:
    """The pure form of a depth-2 ReLU ``net`` and its data, X cast to the weights' dtype."""
    params = check_params(net, stacked=False)
    _check_two_layer(params)
    X = check_batch(params, X)
    return params, X, _check_labels(y, X.shape[0], X.dtype)


def _sqnorm(p: Any) -> jax.Array:
    """‖θ‖² = Σ of the squares of every parameter."""
    return sum(jnp.sum(a * a) for a in jax.tree.leaves(p))


def init_two_layer(key: jax.Array, d: int, width: int, *, bias: bool = False,
                   init_scale: float = 1e-2) -> MLPParams:
    """Small random initialisation of N(x) = Σ_j v_j σ(w_jᵀx + b_j) in pure form.

        w_j ~ N(0, (init_scale²/d) I_d)  (so ‖w_j‖ ≈ init_scale),   v_j ~ N(0, init_scale²),
        b_j = 0  (if ``bias``).

    Units start nearly balanced (v_j² ≈ ‖w_j‖²), and ‖θ‖² ≈ 2·width·init_scale².

    Args:
        key: PRNG key. d: input dimension. width: number of hidden units m.
        bias: add hidden biases (initialised at 0). init_scale: the scale above, > 0.

    Returns:
        :class:`~mini_adv.nets.MLPParams` with kernel ``(d, width)``, readout ``(width,)``
        and biases ``((width,),)`` or ``None``, in JAX's default float dtype.

    Raises:
        ValueError: for a key that is not a PRNG key, non-positive sizes or a non-positive
            ``init_scale``.
    """
    key = check_key(key)
    d, width = check_size("d", d), check_size("width", width)
    init_scale = float(check_number("init_scale", init_scale, low=0.0))
    k_w, k_v = jax.random.split(key)
    K = jax.random.normal(k_w, (d, width)) * (init_scale / math.sqrt(d))
    v = jax.random.normal(k_v, (width,)) * init_scale
    return MLPParams(kernels=(K,), readout=v, biases=(jnp.zeros((width,)),) if bias else None)


class TwoLayerNet(nnx.Module):
    """TwoLayerNet(d, width, *, bias=False, init_scale=1e-2, rngs)

    The trainable depth-2 ReLU network of chapter 5 as a Flax NNX module,

        N(x) = Σ_{j=1}^{width} v_j σ(w_jᵀx + b_j),

    with parameters ``kernel`` (d, width) = [w_1 … w_m], ``bias`` (width,) or ``None``
    (bias-free), ``readout`` (width,) = v, initialised small by :func:`init_two_layer`
    with the key ``rngs.params()``. No output bias: N is 2-homogeneous in θ. ``net(x)`` maps
    ``(d,)`` to a scalar and ``(B, d)`` to ``(B,)``. ``net.params()`` returns the pure
    :class:`~mini_adv.nets.MLPParams` form, so every attack of :mod:`mini_adv.attacks`
    accepts a ``TwoLayerNet`` (through :func:`~mini_adv.nets.as_params`).
    :meth:`from_params` builds one from given parameters, without a random draw.

    Example:
        >>> net = TwoLayerNet(100, 32, rngs=nnx.Rngs(0))
        >>> net(jnp.ones((8, 100))).shape
        (8,)

    Raises:
        ValueError: for non-positive sizes or ``init_scale``, or if neither or both of
            ``rngs`` and ``params`` are given.
    """

    def __init__(self, d: int, width: int, *, bias: bool = False, init_scale: float = 1e-2,
                 rngs: nnx.Rngs | None = None, params: MLPParams | None = None):
        if (rngs is None) == (params is None):
            raise ValueError("pass rngs (a random initialisation, e.g. rngs=nnx.Rngs(0)) or, "
                             "through TwoLayerNet.from_params, the parameters; not both")
        p = init_two_layer(rngs.params(), d, width, bias=bias, init_scale=init_scale) \
            if params is None else params
        self.kernel = nnx.Param(p.kernels[0])
        self.bias = nnx.Param(p.biases[0]) if p.biases is not None else None
        self.readout = nnx.Param(p.readout)

    @classmethod
    def from_params(cls, params: Network) -> "TwoLayerNet":
        """A ``TwoLayerNet`` holding the arrays of a one-hidden-layer ReLU network (no random
        draw).

        Raises:
            ValueError: if ``params`` is not a single one-hidden-layer ReLU network with
                finite float32/float64 weights.
        """
        params = check_params(params, stacked=False, name="params")
        _check_two_layer(params)
        d, width = params.widths
        return cls(d, width, bias=params.biases is not None, params=params)

    @property
    def width(self) -> int:
        """The number of hidden units m."""
        return int(self.readout[...].shape[0])

    @property
    def has_bias(self) -> bool:
        """Whether the units have biases b_j."""
        return self.bias is not None

    def params(self) -> MLPParams:
        """The pure form: an :class:`~mini_adv.nets.MLPParams` with one kernel."""
        return MLPParams(kernels=(self.kernel[...],), readout=self.readout[...],
                         biases=(self.bias[...],) if self.bias is not None else None,
                         activation="relu")

    def __call__(self, x: jax.Array) -> jax.Array:
        check_finite("input x", x)
        return apply(self.params(), jnp.asarray(x))

"""Activation functions by name.

The theory chapters compare activations (ReLU, tanh, GELU, ...); this module is the one
place that maps a name to a function, so that a network, a Gaussian-moment computation and
a plot all mean the same σ.

ReLU is ``jax.nn.relu``, whose derivative at exactly 0 is 0 (``jnp.maximum(z, 0.)`` would
give 1/2 there); the choice only matters for exact zeros (dead units, zero inputs).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Activation = Callable[[jax.Array], jax.Array]

ACTIVATIONS: dict[str, Activation] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "softplus": jax.nn.softplus,
    "sin": jnp.sin,
    "abs": jnp.abs,
    "square": jnp.square,
    "identity": lambda z: z,
}
"""Name → σ. ``"identity"`` gives a linear network (useful as a control)."""

#: Activations σ with σ(a z) = a σ(z) for a > 0: bias-free networks built from them are
#: positively 1-homogeneous in x, so Euler's identity f(x) = ⟨∇f(x), x⟩ holds.
HOMOGENEOUS: frozenset[str] = frozenset({"relu", "abs", "identity"})


def get_activation(activation: str | Activation) -> Activation:
    """Return σ for a name in :data:`ACTIVATIONS`, or ``activation`` itself if it is callable.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    if callable(activation):
        return activation
    try:
        return ACTIVATIONS[activation]
    except (KeyError, TypeError):
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(
            f"unknown activation {activation!r}; use one of {known}, or pass a callable"
        ) from None

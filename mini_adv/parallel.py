"""Many independent networks: one kernel over a stack of networks, batched or looped, on every device.

The statistics of the book come from many independent random networks (a network's inputs
share its randomness, so error bars come from the spread over networks). The networks are
drawn as one stacked pytree (``init_params(key, widths, n=N)``: leading axis N on every
leaf) and a kernel written for one network, ``kernel(params, *args)``, is run on all of
them by :func:`map_networks`, in one of two ways:

* ``"vmap"``: one compiled call of ``jax.vmap(kernel)``. Best for small networks, where a
  call's fixed cost (dispatch, a few kernel launches; about 0.1–1 ms on a CPU) dominates.
  A ``lax.while_loop`` inside the kernel then runs until the slowest of all N networks is
  done, and every iteration works on all N networks' arrays.
* ``"loop"``: one compiled call of ``kernel`` per network. Each network stops its loops as
  soon as its own inputs are done, and the N calls are dispatched asynchronously.

``"auto"`` picks one by size (:func:`choose_strategy`: vmap while the work of one network is
small; the threshold comes from timing both on a 2-core CPU, see ``benchmarks/run.py``).
With several local devices (GPUs, or CPU devices forced by
``XLA_FLAGS=--xla_force_host_platform_device_count=k``), the network axis is sharded across
all of them with :mod:`jax.sharding`: ``vmap`` places N/k networks on each device (N is
padded to a multiple of k with copies of the last network, dropped from the result), and
``loop`` sends network i to device i mod k.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

STRATEGIES = ("auto", "vmap", "loop")

VMAP_MAX_FLOPS = 1.0e5
"""``"auto"`` uses vmap while one network's work per call, estimated as
rows × Σ_ℓ fan_in·fan_out multiply-adds (one forward pass over its inputs), is at most this.

Measured on a busy 2-core CPU (``benchmarks/run.py``, "many networks" table): for networks
this small a call's fixed cost dominates (DeepFool on 32 networks [64, 16, 4] × 16 inputs:
vmap 0.06–0.1× the loop; the gradient flow: 0.9–1.1×). Above it the two differ by kernel:
vmap stays faster for DeepFool (0.2–0.95× the loop up to 3·10⁸), but the gradient flow's
while-loop then waits for the slowest of all N networks and vmap takes up to 3.4× the loop
([256, 64, 16] × 64 inputs, 16 networks). The loop is never far from the best, so it is
the default for anything larger."""


def _leading(tree: Any) -> int:
    sizes = {int(a.shape[0]) for a in jax.tree.leaves(tree) if getattr(a, "ndim", 0) > 0}
    if len(sizes) != 1:
        raise ValueError(f"every array must have the same leading (network) axis; got sizes {sorted(sizes)}")
    return sizes.pop()


def network_flops(params: Any, *args: Any) -> float:
    """Multiply-adds of one forward pass of one network over its inputs (the size measure).

    rows × Σ_ℓ fan_in·fan_out over the kernels of one network, with rows = the number of
    input rows of the first argument (``args[0]`` of shape ``(N, ..., d)``), or 1.
    """
    kernels = getattr(params, "kernels", None)
    if kernels is None:
        per_row = sum(math.prod(a.shape[1:]) for a in jax.tree.leaves(params))
    else:
        per_row = sum(int(k.shape[-2]) * int(k.shape[-1]) for k in kernels)
    rows = 1
    if args and getattr(args[0], "ndim", 0) >= 3:
        rows = math.prod(args[0].shape[1:-1])
    return float(rows * per_row)


def choose_strategy(params: Any, *args: Any) -> str:
    """``"vmap"`` if :func:`network_flops` ≤ :data:`VMAP_MAX_FLOPS`, else ``"loop"``."""
    return "vmap" if network_flops(params, *args) <= VMAP_MAX_FLOPS else "loop"


@functools.lru_cache(maxsize=64)
def _compiled(kernel: Callable) -> tuple[Callable, Callable]:
    """The jitted vmap of ``kernel`` and the jitted ``kernel``, cached per kernel object so
    that repeated calls with new values reuse the compiled code."""
    return jax.jit(jax.vmap(kernel)), jax.jit(kernel)


def _take(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda a: a[i], tree)


def map_networks(kernel: Callable, params: Any, *args: Any, strategy: str = "auto",
                 devices: Sequence[Any] | None = None) -> Any:
    """``kernel(params[i], *(a[i] for a in args))`` for every network i of a stack.

        out[i] = kernel(θ_i, x_i, …),   i = 1, …, N

    Args:
        kernel: a pure function of one network's parameters and its arguments, returning a
            pytree of arrays (e.g. ``lambda p, X: deepfool_kernel(p, X)``). Pass the same
            function object each time: its compiled forms are cached per object.
        params: a stacked pytree (leading axis N on every leaf), e.g. from
            ``init_params(key, widths, n=N)``.
        *args: arrays (or pytrees) with the same leading axis N, one slice per network.
        strategy: ``"auto"`` (:func:`choose_strategy`), ``"vmap"`` or ``"loop"``.
        devices: the devices to shard the network axis over (default: all local devices).

    Returns:
        The kernel's output pytree with a leading axis N (on the first device for
        ``"loop"``; sharded over the devices for ``"vmap"``).

    Raises:
        ValueError: for an unknown strategy, a non-callable kernel, or arguments whose
            leading axes differ from the number of networks.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {STRATEGIES}")
    if not callable(kernel):
        raise ValueError(f"kernel must be a function kernel(params, *args); got {type(kernel).__name__}")
    n = _leading(params)
    for i, a in enumerate(args):
        if _leading(a) != n:
            raise ValueError(f"argument {i} has leading axis {_leading(a)}, but there are {n} "
                             "networks; every argument needs one slice per network")
    if strategy == "auto":
        strategy = choose_strategy(params, *args)
    devices = list(devices) if devices is not None else jax.local_devices()
    if not devices:
        raise ValueError("devices is empty; pass at least one device")
    batched, single = _compiled(kernel)
    if strategy == "vmap":
        k = len(devices)
        if k == 1:
            return batched(params, *args)
        pad = (-n) % k
        grow = (lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)])) if pad else (lambda a: a)
        sharding = NamedSharding(Mesh(np.array(devices), ("networks",)), PartitionSpec("networks"))
        placed = jax.device_put(jax.tree.map(grow, (params, args)), sharding)
        out = batched(placed[0], *placed[1])
        return jax.tree.map(lambda a: a[:n], out) if pad else out
    outs = []
    for i in range(n):   # asynchronous dispatch: the calls overlap across devices
        dev = devices[i % len(devices)]
        p_i, a_i = jax.device_put((_take(params, i), tuple(_take(a, i) for a in args)), dev)
        outs.append(single(p_i, *a_i))
    first = devices[0]
    return jax.tree.map(lambda *xs: jnp.stack([jax.device_put(x, first) for x in xs]), *outs)

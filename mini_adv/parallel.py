"""Many independent networks: one kernel over a stack of networks, batched or looped, on every device.

The statistics of the book come from many independent random networks (a network's inputs
share its randomness, so error bars come from the spread over networks). The networks are
drawn as one stacked pytree (``init_params(key, widths, n=N)``: leading axis N on every
leaf) and a kernel written for one network, ``kernel(params, *args)``, is run on all of
them by :func:`map_networks`, in one of two ways:

* ``"vmap"``: one compiled call of ``jax.vmap(kernel)``. Best for small networks, where a
  call's fixed cost (dispatch, a few kernel launches) dominates.
  A ``lax.while_loop`` inside the kernel then runs until the slowest of all N networks is
  done, and every iteration works on all N networks' arrays.
* ``"loop"``: one compiled call of ``kernel`` per network. Each network stops its loops as
  soon as its own inputs are done, and the N calls are dispatched asynchronously.

``"auto"`` picks one by size, deterministically (:func:`choose_strategy`), so that the same
key gives the same numbers (vmap and the loop can round differently in the last bit, and a
gradient flow near a kink can amplify that). Which strategy wins depends on the kernel as
much as on the size: on the same small networks DeepFool runs faster vmapped and the gradient
flow faster looped, because the flow's while-loop runs until the slowest of all networks is
done (several times the average number of steps), while DeepFool stops after a few steps on
every network. The size threshold is therefore the kernel's: :data:`VMAP_MAX_FLOPS` (the default, for
kernels whose loops run very different numbers of iterations on different networks) or
:data:`VMAP_MAX_FLOPS_UNIFORM` (for kernels whose loops take about as many iterations on
every network), passed as ``vmap_max_flops``. On an accelerator ``"auto"`` uses vmap.
With several local devices (GPUs, or CPU devices forced by
``XLA_FLAGS=--xla_force_host_platform_device_count=k``), the network axis is sharded across
all of them with :mod:`jax.sharding`: ``vmap`` places N/k networks on each device (N is
padded to a multiple of k with copies of the last network, dropped from the result), and
``loop`` sends network i to device i mod k.

Timings: the measured times of both strategies and of ``"auto"`` (and the grid the thresholds
were fitted on) are machine-specific and live with the benchmarks, in
``benchmarks/results/latest.md`` (``python benchmarks/run.py`` measures them again); this
module states only the rules.

Compiled forms are cached per kernel object, shape signature and device list, for the
:data:`MAX_CACHED_RUNNERS` most recently used (least recently used dropped first); each entry
holds the compiled program (one per device for ``"loop"``) and a reference to the kernel.
:func:`clear_cache` empties it (to free device memory, or after redefining a kernel).
"""

from __future__ import annotations

import collections
import math
from typing import Any, Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mini_adv.nets import MLPParams
from mini_adv.validation import check_params

STRATEGIES = ("auto", "vmap", "loop")

VMAP_MAX_FLOPS = 1.0e4
"""The default size threshold of ``"auto"`` on a CPU: vmap while one network's work per
call, rows × Σ_ℓ fan_in·fan_out multiply-adds (:func:`network_flops`), is at most this.
Fitted on a 2-core CPU over a grid of DeepFool and gradient-flow runs (widths
[d, d/4, d/16], 4–256 inputs, 4–32 networks; the measurements: ``benchmarks/results``):
below it vmap was faster for both kernels, well above it the looped gradient flow was
faster in every case. Safe for any kernel: vmap is chosen only where a call's fixed cost
dominates."""

VMAP_MAX_FLOPS_UNIFORM = 3.0e5
"""The size threshold for kernels whose loops take about as many iterations on every network
(DeepFool: a few steps on most inputs), where vmap loses nothing to the slowest network:
in the same grid vmapped DeepFool was about as fast as the loop or faster up to this size."""

MAX_CACHED_RUNNERS = 128
"""How many compiled strategies :func:`map_networks` keeps (least recently used dropped)."""

def _leading(tree: Any, what: str) -> int:
    """The common leading (network) axis of every array of ``tree``."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ValueError(f"{what} holds no arrays; map_networks needs one slice per network")
    if any(np.ndim(a) == 0 for a in leaves):
        raise ValueError(f"{what} is (or holds) a scalar, but map_networks passes every argument "
                         f"sliced along a leading network axis. Pass one value per network, "
                         f"e.g. jnp.full((N,), value), or make the value part of the kernel "
                         f"(a function defined once: a new lambda per call recompiles)")
    sizes = {int(np.shape(a)[0]) for a in leaves}
    if len(sizes) != 1:
        raise ValueError(f"every array of {what} must have the same leading (network) axis; got "
                         f"sizes {sorted(sizes)}")
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


def choose_strategy(params: Any, *args: Any, vmap_max_flops: float = VMAP_MAX_FLOPS,
                    devices: Sequence[Any] | None = None) -> str:
    """The strategy of ``"auto"``: ``"vmap"`` on an accelerator (one launch for all networks)
    or where :func:`network_flops` ≤ ``vmap_max_flops``, else ``"loop"``."""
    devices = list(devices) if devices is not None else jax.local_devices()
    if any(d.platform != "cpu" for d in devices):
        return "vmap"
    return "vmap" if network_flops(params, *args) <= vmap_max_flops else "loop"


def _take(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda a: a[i], tree)


_RUNNERS: collections.OrderedDict = collections.OrderedDict()   # see MAX_CACHED_RUNNERS


def clear_cache() -> None:
    """Drop every compiled strategy that :func:`map_networks` keeps (the next call compiles)."""
    _RUNNERS.clear()


def _signature(tree: Any) -> tuple:
    """Tree structure, shapes, dtypes and weak types: what a compiled program is specialised to."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple(
        (np.shape(a), str(a.dtype), bool(getattr(a, "weak_type", False))) if hasattr(a, "dtype")
        else (np.shape(a), type(a).__name__, True) for a in leaves)


def _runner(kernel: Callable, strategy: str, params: Any, args: tuple, n: int,
            devices: list) -> Callable[[Any, tuple], Any]:
    """The compiled strategy for this kernel, shape signature and device list (compiled once,
    kept for the :data:`MAX_CACHED_RUNNERS` most recently used)."""
    key = (kernel, strategy, _signature((params, args)), tuple(devices))
    run = _RUNNERS.get(key)
    if run is None:
        make = _vmap_runner if strategy == "vmap" else _loop_runner
        run = _RUNNERS[key] = make(kernel, params, args, n, devices)
        while len(_RUNNERS) > MAX_CACHED_RUNNERS:
            _RUNNERS.popitem(last=False)
    else:
        _RUNNERS.move_to_end(key)
    return run


def _vmap_runner(kernel: Callable, params: Any, args: tuple, n: int, devices: list):
    """One compiled call of ``vmap(kernel)``, the network axis sharded over ``devices``."""
    batched = jax.jit(jax.vmap(kernel))
    k = len(devices)
    if k == 1:
        place = lambda tree: jax.device_put(tree, devices[0])  # noqa: E731
        trim = lambda out: out  # noqa: E731
    else:
        pad = (-n) % k
        sharding = NamedSharding(Mesh(np.array(devices), ("networks",)), PartitionSpec("networks"))

        def grow(a):   # on the host: no eager device operation, no compilation per shape
            a = np.asarray(a)
            return np.concatenate([a, np.repeat(a[-1:], pad, axis=0)])

        if pad:
            place = lambda tree: jax.device_put(jax.tree.map(grow, tree), sharding)  # noqa: E731
        else:
            place = lambda tree: jax.device_put(tree, sharding)  # noqa: E731
        trim = (lambda out: jax.tree.map(lambda a: a[:n], out)) if pad else (lambda out: out)
    p0, a0 = place((params, args))
    compiled = batched.lower(p0, *a0).compile()

    def run(params: Any, args: tuple) -> Any:
        p, a = place((params, args))
        return trim(compiled(p, *a))
    return run


def _loop_runner(kernel: Callable, params: Any, args: tuple, n: int, devices: list):
    """One compiled call of ``kernel`` per network, network i on device i mod k.

    The loop slices and stacks on the host (NumPy views, one ``np.stack`` a leaf): eager JAX
    indexing and ``jnp.stack`` would dispatch an operation per leaf and network and compile a
    program per new shape, which cost several times the kernel calls themselves on small
    networks (measured with ``benchmarks/run.py``).
    """
    single = jax.jit(kernel)
    used = devices[:min(len(devices), n)]
    slice0 = _take(jax.device_get((params, args)), 0)
    compiled = []
    for dev in used:
        p0, a0 = jax.device_put(slice0, dev)
        compiled.append(single.lower(p0, *a0).compile())

    def run(params: Any, args: tuple) -> Any:
        host = jax.device_get((params, args))
        outs = []
        for i in range(n):   # asynchronous dispatch: the calls overlap across devices
            p_i, a_i = jax.device_put(_take(host, i), used[i % len(used)])
            outs.append(compiled[i % len(used)](p_i, *a_i))
        stacked = jax.tree.map(lambda *xs: np.stack(xs), *jax.device_get(outs))
        return jax.device_put(stacked, used[0])
    return run


def map_networks(kernel: Callable, params: Any, *args: Any, strategy: str = "auto",
                 vmap_max_flops: float = VMAP_MAX_FLOPS,
                 devices: Sequence[Any] | None = None) -> Any:
    """``kernel(params[i], *(a[i] for a in args))`` for every network i of a stack.

        out[i] = kernel(θ_i, x_i, …),   i = 1, …, N

    Args:
        kernel: a pure function of one network's parameters and its arguments, returning a
            pytree of arrays (e.g. ``lambda p, X: deepfool_kernel(p, X)``). Pass the same
            function object each time: its compiled forms are cached per object and shape
            signature (the :data:`MAX_CACHED_RUNNERS` most recent), so that new values
            never recompile.
        params: a stacked pytree (leading axis N on every leaf), e.g. from
            ``init_params(key, widths, n=N)``; a stacked :class:`~mini_adv.nets.MLPParams` is
            checked (:func:`mini_adv.validation.check_params`: float32/float64, finite).
        *args: arrays (or pytrees) with the same leading axis N, one slice per network
            (e.g. ``data.sphere_batches(key, N, n, d)``). A value shared by all networks
            (a scalar budget) is not sliced: pass ``jnp.full((N,), value)``.
        strategy: ``"vmap"``, ``"loop"`` or ``"auto"`` (:func:`choose_strategy`: by size,
            the same choice for the same shapes, so the same numbers for the same key).
        vmap_max_flops: the size threshold of ``"auto"`` on a CPU, the kernel's:
            :data:`VMAP_MAX_FLOPS` (default) or :data:`VMAP_MAX_FLOPS_UNIFORM`.
        devices: the devices to shard the network axis over (default: all local devices).

    Returns:
        The kernel's output pytree with a leading axis N (on the first device for
        ``"loop"``; sharded over the devices for ``"vmap"``).

    Raises:
        ValueError: for an unknown strategy, a non-callable kernel, a single network where a
            stack is expected, weights that are not float32/float64 or hold NaN/inf, arguments
            whose leading axes differ from the number of networks or that are scalars, no
            devices, or a negative or NaN ``vmap_max_flops``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {STRATEGIES}")
    if not callable(kernel):
        raise ValueError(f"kernel must be a function kernel(params, *args); got {type(kernel).__name__}")
    try:
        threshold_ok = not isinstance(vmap_max_flops, bool) and float(vmap_max_flops) >= 0
    except (TypeError, ValueError):
        threshold_ok = False
    if not threshold_ok:
        raise ValueError(f"vmap_max_flops must be ≥ 0 (VMAP_MAX_FLOPS or VMAP_MAX_FLOPS_UNIFORM); "
                         f"got {vmap_max_flops!r}")
    if isinstance(params, MLPParams):
        check_params(params, stacked=True, name="params")
    n = _leading(params, "params")
    for i, a in enumerate(args):
        m = _leading(a, f"argument {i}")
        if m != n:
            raise ValueError(f"argument {i} has leading axis {m}, but there are {n} "
                             "networks; every argument needs one slice per network")
    devices = list(devices) if devices is not None else jax.local_devices()
    if not devices:
        raise ValueError("devices is empty; pass at least one device")
    if strategy == "auto":
        strategy = choose_strategy(params, *args, vmap_max_flops=vmap_max_flops, devices=devices)
    return _runner(kernel, strategy, params, args, n, devices)(params, args)

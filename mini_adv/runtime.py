"""Where the code runs, and how big the experiments are there.

Every chapter starts with :func:`report` (which backend, which devices, which versions) and
takes its problem sizes from :func:`sizes`, so that the same notebook runs in about a
minute on a 2-core CPU and uses a GPU's headroom for larger, cleaner experiments.

Static mode (``MINI_ADV_STATIC=1``, set by ``make book``) tells the chapters that they are
being executed for the static web book: no live widgets, no progress bars.

Compilation: :func:`report` turns on JAX's persistent compilation cache
(:func:`enable_compilation_cache`), so a chapter run a second time, or a kernel that another
chapter already compiled, loads its compiled code from disk instead of compiling it again;
:func:`count_compilations` counts the compilations of a block of code (a kernel called with
new values but the same shapes must not compile again).
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, TypeVar

import jax

T = TypeVar("T")


def on_accelerator() -> bool:
    """True when JAX's default backend is not the CPU (a GPU or TPU)."""
    return jax.default_backend() != "cpu"


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def static_mode() -> bool:
    """True while the book is built for the web (``MINI_ADV_STATIC`` set to a non-empty, non-0 value)."""
    return os.environ.get("MINI_ADV_STATIC", "") not in ("", "0")


def sizes(*, cpu: dict[str, Any], gpu: dict[str, Any]) -> dict[str, Any]:
    """Pick the problem sizes for this machine: ``gpu`` on an accelerator, else ``cpu``.

    Both dicts must have the same keys, so a chapter cannot silently depend on one of them.

    Raises:
        ValueError: if the keys of ``cpu`` and ``gpu`` differ.
    """
    if set(cpu) != set(gpu):
        raise ValueError(f"cpu and gpu sizes must have the same keys; got {sorted(cpu)} and {sorted(gpu)}")
    return dict(gpu if on_accelerator() else cpu)


def compilation_cache_dir() -> str:
    """Where :func:`enable_compilation_cache` keeps compiled code by default.

    ``MINI_ADV_JAX_CACHE`` if set, else ``$XDG_CACHE_HOME/mini_adv/jax`` (``~/.cache/mini_adv/jax``).
    JAX keys every entry by the program, the JAX/XLA versions, the backend and the compile
    options, so one directory serves every version and machine safely.
    """
    if os.environ.get("MINI_ADV_JAX_CACHE"):
        return os.environ["MINI_ADV_JAX_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mini_adv", "jax")


def enable_compilation_cache(path: str | None = None, *, min_compile_secs: float = 0.2) -> str | None:
    """Turn on JAX's persistent compilation cache (compiled XLA programs kept on disk).

    Every chapter compiles the same few kernels (attacks, training); with the cache a
    second execution of the book, or a kernel with shapes some earlier chapter used, loads
    the compiled program instead of compiling it (about 0.3–1.5 s each on a 2-core CPU).
    Programs that compile in under ``min_compile_secs`` are not stored (loading them would
    not be faster). ``MINI_ADV_JAX_CACHE=0`` (or ``off``) disables it.

    Args:
        path: the cache directory (default :func:`compilation_cache_dir`).
        min_compile_secs: only programs that took at least this long to compile are stored.

    Returns:
        The directory in use, or ``None`` when disabled or not writable.
    """
    if os.environ.get("MINI_ADV_JAX_CACHE", "").lower() in ("0", "off", "false", "no"):
        return None
    path = path or compilation_cache_dir()
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_secs))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


@dataclass
class Compilations:
    """What :func:`count_compilations` saw: ``count`` XLA compilations taking ``seconds`` in all."""

    count: int = 0
    seconds: float = 0.0
    durations: list[float] = field(default_factory=list)


_COUNTERS: list[Compilations] = []
_LISTENER_LOCK = threading.Lock()
_LISTENER_INSTALLED = False
_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


def _on_event(event: str, duration: float, **kwargs: Any) -> None:
    if event == _BACKEND_COMPILE:
        for c in _COUNTERS:
            c.count += 1
            c.seconds += duration
            c.durations.append(duration)


@contextlib.contextmanager
def count_compilations() -> Iterator[Compilations]:
    """Count the XLA compilations (backend compiles) that happen inside the ``with`` block.

    Uses JAX's monitoring events (``/jax/core/compile/backend_compile_duration``, present in
    JAX 0.7 and 0.10), so it sees every compilation, including those of nested jitted
    functions and of eager operations (create the inputs before the block). With the
    persistent cache on, a program loaded from disk may be counted too, with its (short)
    load time: count with the cache off (``jax_enable_compilation_cache``). Example::

        with count_compilations() as c:
            attacks.deepfool_kernel(params, X2)   # same shapes as an earlier call
        assert c.count == 0
    """
    global _LISTENER_INSTALLED
    import jax.monitoring

    with _LISTENER_LOCK:
        if not _LISTENER_INSTALLED:
            jax.monitoring.register_event_duration_secs_listener(_on_event)
            _LISTENER_INSTALLED = True
    counter = Compilations()
    _COUNTERS.append(counter)
    try:
        yield counter
    finally:
        _COUNTERS.remove(counter)


def report(*, compilation_cache: bool = True) -> str:
    """A one-paragraph description of the runtime (backend, devices, versions); also printed.

    Also turns on the persistent compilation cache (:func:`enable_compilation_cache`)
    unless ``compilation_cache=False``: every chapter calls this first.
    """
    import flax
    import numpy

    cache = enable_compilation_cache() if compilation_cache else None
    devices = ", ".join(f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices())
    where = "Colab" if in_colab() else platform.node() or "local"
    text = (f"JAX {jax.__version__} · Flax {flax.__version__} · NumPy {numpy.__version__} · "
            f"Python {platform.python_version()} on {where}\n"
            f"backend: {jax.default_backend()} · devices: {devices} · "
            f"x64: {bool(jax.config.read('jax_enable_x64'))} · "
            f"sizes: {'GPU' if on_accelerator() else 'CPU'} preset · "
            f"compilation cache: {'on' if cache else 'off'}")
    print(text)
    return text


def progress(iterable: Iterable[T], *, desc: str = "", total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar in notebooks and terminals, silently in static mode."""
    if static_mode():
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, desc=desc, total=total, leave=False)


def float64() -> Any:
    """A context manager under which JAX computes in float64 (``jax_enable_x64``).

    ``jax.enable_x64(True)`` in recent JAX, ``jax.experimental.enable_x64()`` in JAX 0.7
    (Colab's version). Arrays created inside are float64 by default; convert explicitly
    with ``.astype(jnp.float64)``.
    """
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64

    return enable_x64()

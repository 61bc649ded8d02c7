"""Where the code runs, and how big the experiments are there.

Every chapter starts with :func:`report` (which backend, which devices, which versions) and
takes its problem sizes from :func:`sizes`, so that the same notebook runs in about a
minute on a 2-core CPU and uses a GPU's headroom for larger, cleaner experiments.

Static mode (``MINI_ADV_STATIC=1``, set by ``make book``) tells the chapters that they are
being executed for the static web book: no live widgets, no progress bars.

Compilation: each chapter's setup cell turns on JAX's persistent compilation cache with an
explicit call, ``enable_compilation_cache("~/.cache/mini_adv/jax")``, so a chapter run a
second time, or a kernel that another chapter already compiled, loads its compiled code from
disk instead of compiling it again (``MINI_ADV_JAX_CACHE`` redirects or disables it: the tests
and the book build point it at a temporary directory). Nothing else in the package changes
JAX's configuration or writes to disk: :func:`report` only reports.
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

from mini_adv.validation import check_number

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


_CACHE_OFF = ("0", "off", "false", "no")
"""Values of ``MINI_ADV_JAX_CACHE`` (any case) that turn the persistent compilation cache off."""


def compilation_cache_dir() -> str:
    """The book's default cache directory, for :func:`enable_compilation_cache`.

    ``$XDG_CACHE_HOME/mini_adv/jax``, i.e. ``~/.cache/mini_adv/jax`` (the directory the
    chapters pass), or ``MINI_ADV_JAX_CACHE`` if that names a directory. Only computes the path:
    nothing is created. JAX keys every entry by the program, the JAX/XLA versions, the backend
    and the compile options, so one directory serves every version and machine safely.
    """
    env = os.environ.get("MINI_ADV_JAX_CACHE", "")
    if env and env.lower() not in _CACHE_OFF:
        return os.path.abspath(os.path.expanduser(env))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mini_adv", "jax")


def enable_compilation_cache(path: str | None = None, *, min_compile_secs: float = 0.2) -> str | None:
    """Turn on JAX's persistent compilation cache (compiled XLA programs kept on disk) in ``path``.

    Every chapter compiles the same few kernels (attacks, training); with the cache a
    second execution of the book, or a kernel with shapes some earlier chapter used, loads
    the compiled program instead of compiling it. Programs that compile in under
    ``min_compile_secs`` are not stored (loading them would not be faster).

    An explicit choice of the caller: this is the only function of the package that changes
    JAX's configuration (``jax_compilation_cache_dir``, the persistent cache's minimum compile
    time, and its minimum entry size, set to 0) or writes to disk, and it writes only in the
    directory it returns. The environment variable ``MINI_ADV_JAX_CACHE`` overrides the
    argument: ``off`` (or ``0``, ``false``, ``no``) disables the cache, any other value is
    the directory to use instead of ``path`` (the tests and the book build set it to a
    temporary directory).

    Args:
        path: the cache directory (``~`` is expanded); default :func:`compilation_cache_dir`.
        min_compile_secs: only programs that took at least this long to compile are stored.

    Returns:
        The absolute directory in use, or ``None`` when disabled by ``MINI_ADV_JAX_CACHE`` or
        when the directory cannot be created (the configuration is then left unchanged).

    Raises:
        ValueError: if ``min_compile_secs`` is not a finite number ≥ 0.
    """
    min_compile_secs = check_number("min_compile_secs", min_compile_secs, low=0.0, strict_low=False)
    env = os.environ.get("MINI_ADV_JAX_CACHE", "")
    if env.lower() in _CACHE_OFF:
        return None
    path = env or path or compilation_cache_dir()
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_secs))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def compilation_cache_in_use() -> str | None:
    """The directory of JAX's persistent compilation cache if it is on, else ``None``.

    Reads JAX's configuration (``jax_enable_compilation_cache`` and
    ``jax_compilation_cache_dir``); changes nothing.
    """
    if not jax.config.jax_enable_compilation_cache:
        return None
    return jax.config.jax_compilation_cache_dir or None


@dataclass
class Compilations:
    """What :func:`count_compilations` saw: ``count`` XLA compilations taking ``seconds`` in all.

    A mutable record on purpose: it is filled in while the ``with`` block runs (JAX reports
    each compilation as it happens), so read it after the block. ``durations`` lists the
    seconds of each compilation, in order.
    """

    count: int = 0
    seconds: float = 0.0
    durations: list[float] = field(default_factory=list)


_COUNTERS: list[Compilations] = []   # the counters of the with-blocks now open
_LISTENER_LOCK = threading.Lock()
_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


def _on_event(event: str, duration: float, **kwargs: Any) -> None:
    if event == _BACKEND_COMPILE:
        for c in list(_COUNTERS):
            c.count += 1
            c.seconds += duration
            c.durations.append(duration)


def _unregister(callback: Any) -> None:
    import jax.monitoring

    remove = getattr(jax.monitoring, "unregister_event_duration_listener", None)
    if remove is None:   # JAX 0.7 (Colab) has only the private form
        from jax._src import monitoring as _monitoring

        remove = _monitoring._unregister_event_duration_listener_by_callback
    remove(callback)


@contextlib.contextmanager
def count_compilations() -> Iterator[Compilations]:
    """Count the XLA compilations (backend compiles) that happen inside the ``with`` block.

    Uses JAX's monitoring events (``/jax/core/compile/backend_compile_duration``, present in
    JAX 0.7 and 0.10), so it sees every compilation, including those of nested jitted
    functions and of eager operations (create the inputs before the block). The listener is
    registered with JAX when the first of the open blocks starts and removed when the last one
    ends (blocks may nest; the count is per block), so nothing stays installed afterwards.
    With the persistent cache on, a program loaded from disk may be counted too, with its
    (short) load time: count with the cache off (``jax_enable_compilation_cache``). Example::

        with count_compilations() as c:
            attacks.deepfool_kernel(params, X2)   # same shapes as an earlier call
        assert c.count == 0

    Yields:
        A :class:`Compilations` record, filled in as the block runs.
    """
    import jax.monitoring

    counter = Compilations()
    with _LISTENER_LOCK:
        if not _COUNTERS:
            jax.monitoring.register_event_duration_secs_listener(_on_event)
        _COUNTERS.append(counter)
    try:
        yield counter
    finally:
        with _LISTENER_LOCK:
            _COUNTERS.remove(counter)
            if not _COUNTERS:
                _unregister(_on_event)


def report() -> str:
    """A one-paragraph description of the runtime (backend, devices, versions); also printed.

    Only reports: it reads JAX's configuration (x64, whether the persistent compilation cache
    is on and where, :func:`compilation_cache_in_use`) and changes nothing, writes nothing.
    Every chapter calls it in its setup cell, after
    ``enable_compilation_cache("~/.cache/mini_adv/jax")``.

    Returns:
        The text printed.
    """
    import flax
    import numpy

    cache = compilation_cache_in_use()
    devices = ", ".join(f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices())
    where = "Colab" if in_colab() else platform.node() or "local"
    text = (f"JAX {jax.__version__} · Flax {flax.__version__} · NumPy {numpy.__version__} · "
            f"Python {platform.python_version()} on {where}\n"
            f"backend: {jax.default_backend()} · devices: {devices} · "
            f"x64: {bool(jax.config.jax_enable_x64)} · "
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

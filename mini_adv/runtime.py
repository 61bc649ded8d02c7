"""Where the code runs, and how big the experiments are there.

Every chapter starts with :func:`report` (which backend, which devices, which versions) and
takes its problem sizes from :func:`sizes`, so that the same notebook runs in about a
minute on a 2-core CPU and uses a GPU's headroom for larger, cleaner experiments.

Static mode (``MINI_ADV_STATIC=1``, set by ``make book``) tells the chapters that they are
being executed for the static web book: no live widgets, no progress bars.
"""

from __future__ import annotations

import os
import platform
import sys
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


def report() -> str:
    """A one-paragraph description of the runtime (backend, devices, versions); also printed."""
    import flax
    import numpy

    devices = ", ".join(f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices())
    where = "Colab" if in_colab() else platform.node() or "local"
    text = (f"JAX {jax.__version__} · Flax {flax.__version__} · NumPy {numpy.__version__} · "
            f"Python {platform.python_version()} on {where}\n"
            f"backend: {jax.default_backend()} · devices: {devices} · "
            f"x64: {bool(jax.config.read('jax_enable_x64'))} · "
            f"sizes: {'GPU' if on_accelerator() else 'CPU'} preset")
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

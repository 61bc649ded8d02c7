"""mini_adv: the companion package of the book *Why are there tiny adversarial examples?*

One module per concept, in the order the book meets them:

* :mod:`mini_adv.activations` — activation functions by name.
* :mod:`mini_adv.validation` — the package's input rules (sizes, numbers, dtypes, networks).
* :mod:`mini_adv.nets` — random scalar-output MLPs (NNX module and pure pytree form).
* :mod:`mini_adv.data` — inputs uniform on the sphere of radius √d, labelled data sets.
* :mod:`mini_adv.gradients` — input gradients, Euler's identity, linearised distance.
* :mod:`mini_adv.attacks` — attacks and their verified results (ray flip distance, ...).
* :mod:`mini_adv.rays` — chapter 1: gradient rays against random rays, and the linear model.
* :mod:`mini_adv.rmt` — chapter 2: random vectors, Marchenko–Pastur, norms and gradients of random nets.
* :mod:`mini_adv.scaling` — chapter 3: the gradient flow's scaling law, lemmas and limits.
* :mod:`mini_adv.conditioning` — chapter 4: Gaussian conditioning and the one-step flip law.
* :mod:`mini_adv.margin` — chapter 5: max-margin training, KKT points and their non-robustness.
* :mod:`mini_adv.trained` — chapter 6: bias-free ReLU MLPs trained on real digits, plain and
  adversarial.
* :mod:`mini_adv.realdata` — chapter 6: what carries over to trained networks on real digits,
  data on a subspace, defences, the units of practice.
* :mod:`mini_adv.regimes` — the closing chapter: the regime table, the book's experiments and
  which results cover them.
* :mod:`mini_adv.quadrature` — Gauss–Hermite expectations E φ(sG) and the length map.
* :mod:`mini_adv.stats` — power-law fits and network-level means with standard errors.
* :mod:`mini_adv.parallel` — one kernel over many independent networks, vmapped or looped, on every device.
* :mod:`mini_adv.runtime` — backend report, CPU/GPU problem sizes, compilation cache and counts.
* :mod:`mini_adv.figures` — the book's figure style and each chapter's figures (the only part
  that imports matplotlib).
* :mod:`mini_adv.checks` — auto-checkers for the chapters' code exercises.

Submodules load on first use (PEP 562), so ``import mini_adv`` is quick and imports neither
matplotlib nor the chapters' modules; ``from mini_adv import attacks`` and
``mini_adv.attacks`` work as usual.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = ("activations", "attacks", "checks", "conditioning", "data", "figures", "gradients",
               "margin", "nets", "parallel", "quadrature", "rays", "realdata", "regimes", "rmt", "runtime",
               "scaling", "stats", "trained", "validation")

_NAMES = {  # re-exported names and the submodule that defines them
    "AttackResult": "attacks", "Status": "attacks", "deepfool": "attacks",
    "gradient_flow": "attacks", "gradient_ray_flip": "attacks", "gradient_step": "attacks",
    "pgd_l2": "attacks", "ray_flip_distance": "attacks",
    "sphere": "data",
    "MLPParams": "nets", "RandomMLP": "nets", "apply": "nets", "init_params": "nets",
}

__all__ = sorted([*_SUBMODULES, *_NAMES])


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)

"""mini_adv: the companion package of the book *Why are there tiny adversarial examples?*

One module per concept, in the order the book meets them:

* :mod:`mini_adv.activations` — activation functions by name.
* :mod:`mini_adv.nets` — random scalar-output MLPs (NNX module and pure pytree form).
* :mod:`mini_adv.data` — inputs uniform on the sphere of radius √d, labelled data sets.
* :mod:`mini_adv.gradients` — input gradients, Euler's identity, linearised distance.
* :mod:`mini_adv.attacks` — attacks and their verified results (ray flip distance, ...).
* :mod:`mini_adv.rays` — chapter 1: gradient rays against random rays, and the linear model.
* :mod:`mini_adv.rmt` — chapter 2: random vectors, Marchenko–Pastur, norms and gradients of random nets.
* :mod:`mini_adv.scaling` — chapter 3: the gradient flow's scaling law, lemmas and limits.
* :mod:`mini_adv.conditioning` — chapter 4: Gaussian conditioning and the one-step flip law.
* :mod:`mini_adv.margin` — chapter 5: max-margin training, KKT points and their non-robustness.
* :mod:`mini_adv.parallel` — one kernel over many independent networks, vmapped or looped, on every device.
* :mod:`mini_adv.runtime` — backend report, CPU/GPU problem sizes, compilation cache and counts.
* :mod:`mini_adv.plotting` — the book's figure style and kernel-free interactive figures.
* :mod:`mini_adv.checks` — auto-checkers for the chapters' code exercises.
"""

from mini_adv import (activations, attacks, checks, conditioning, data, gradients, margin, nets,
                      parallel, plotting, rays, rmt, runtime, scaling)
from mini_adv.attacks import (AttackResult, Status, deepfool, gradient_flow, gradient_ray_flip,
                              gradient_step, pgd_l2, ray_flip_distance)
from mini_adv.data import sphere
from mini_adv.nets import MLPParams, RandomMLP, apply, init_params

__version__ = "0.1.0"

__all__ = [
    "AttackResult", "MLPParams", "RandomMLP", "Status", "activations", "apply", "attacks", "checks",
    "conditioning", "data", "deepfool", "gradient_flow", "gradient_ray_flip", "gradient_step",
    "gradients", "init_params", "margin", "nets", "parallel", "pgd_l2", "plotting",
    "ray_flip_distance", "rays", "rmt", "runtime", "scaling", "sphere",
]

"""Attacks: ways of moving x to the other side of the decision boundary {f = 0}.

Every attack takes one network (a :class:`~mini_adv.nets.RandomMLP`, or its pure form
:class:`~mini_adv.nets.MLPParams`) and a batch ``X`` of shape ``(B, d)``, runs as one jitted
kernel with its loops inside ``lax.while_loop``/``scan``, and returns an :class:`AttackResult`.
A flip is counted only when the network, re-evaluated at ``x_adv``, has the opposite sign:
f(x) · f(x_adv) < 0. Points where nothing can be done are reported by :class:`Status`,
never as successes and never as NaN.

================================  =====================================================
:func:`ray_flip_distance`         first sign change along given rays (chapter 1)
:func:`gradient_ray_flip`         first sign change along the gradient ray, in one kernel
:func:`gradient_step`             one step along ∇f (Bubeck et al.; Montanari & Wu)
:func:`gradient_flow`             the normalised gradient flow (Daniely & Shacham)
:func:`gradient_flow_path`        the same flow's path from one input, for figures
:func:`deepfool`                  binary ℓ2 DeepFool (Moosavi-Dezfooli et al.), a baseline
:func:`pgd_l2`                    ℓ2 projected gradient ascent (Madry et al.), a baseline
================================  =====================================================

Each public function checks its input with :mod:`mini_adv.validation` (one network, finite
weights; ``X`` cast to the weights' dtype; integer, boolean and complex inputs rejected) and
calls a pure kernel ``*_kernel(params, X, ...)`` that has no value checks; vmap the kernels
over stacked networks (``init_params(..., n=N)``) or use
:func:`mini_adv.parallel.map_networks`. Every wrapper except :func:`gradient_flow_path` (and
:func:`verify_float64`) can be called inside ``jax.jit`` with a traced ``X``; its settings must
then be concrete Python or NumPy numbers.

The package's modules, one concept each: :mod:`~mini_adv.attacks.result` (the result type),
:mod:`~mini_adv.attacks._layers` (the first-layer chart), :mod:`~mini_adv.attacks._search`
(the root finder, the rounding band, the default budget), and one module per attack:
:mod:`~mini_adv.attacks.ray`, :mod:`~mini_adv.attacks.step`, :mod:`~mini_adv.attacks.flow`,
:mod:`~mini_adv.attacks.deepfool`, :mod:`~mini_adv.attacks.pgd`.
"""

from mini_adv.attacks._layers import _Chart, _first_layer, _tail, _tail_value_and_grad, _unit
from mini_adv.attacks._search import (_Bracket, _Line, _push_outwards, _root_on_line,
                                      default_budget, rounding_band, secant_fraction)
from mini_adv.attacks.deepfool import deepfool, deepfool_kernel
from mini_adv.attacks.flow import (FlowStep, flow_step, gradient_flow, gradient_flow_kernel,
                                   gradient_flow_path, gradient_flow_path_kernel)
from mini_adv.attacks.pgd import pgd_l2, pgd_l2_kernel
from mini_adv.attacks.ray import (_ray_search, gradient_ray_flip, gradient_ray_flip_kernel,
                                  ray_flip_distance, ray_flip_kernel)
from mini_adv.attacks.result import AttackResult, Status, finalize, verify_float64
from mini_adv.attacks.step import gradient_step, gradient_step_kernel

__all__ = [
    "AttackResult", "FlowStep", "Status", "deepfool", "deepfool_kernel", "default_budget",
    "finalize", "flow_step", "gradient_flow", "gradient_flow_kernel", "gradient_flow_path",
    "gradient_flow_path_kernel", "gradient_ray_flip", "gradient_ray_flip_kernel",
    "gradient_step", "gradient_step_kernel", "pgd_l2", "pgd_l2_kernel", "ray_flip_distance",
    "ray_flip_kernel", "rounding_band", "secant_fraction", "verify_float64",
]

"""Chapter 5: training itself produces non-robust networks (Vardi, Yehudai & Shamir 2022).

A depth-2 ReLU network with optional hidden biases,

    N_θ(x) = Σ_j v_j σ(w_jᵀx + b_j),      θ = (W, b, v),  σ = ReLU,

is positively 2-homogeneous in its parameters: N_{cθ} = c² N_θ for c > 0 (the biases scale
with the weights, so they keep the homogeneity; ‖θ‖² = Σ_j ‖w_j‖² + b_j² + v_j²). Trained
with the logistic or exponential loss, gradient flow converges in direction to a KKT point
of the max-margin problem

    min ½‖θ‖²   s.t.   y_i N_θ(x_i) ≥ 1  for all i                                  (P)

(Lyu & Li 2020; Ji & Telgarsky 2020). On nearly orthogonal data every such KKT point is
non-robust although robust networks fit the same data (Vardi, Yehudai & Shamir 2022). In the
book's reconstruction (chapter 5, not the paper's proof) the KKT point has class-pure units
and non-negative biases, and one direction û ∝ Σ_i y_i x_i flips every training point at
distance of order ‖x‖/√n, while the network :func:`robust_network` (our construction) fits
the same data with a certified radius about √n/2 times larger. This package trains, checks and attacks such networks, one module per concept:

* :mod:`~mini_adv.margin.network`: :class:`TwoLayerNet` (Flax NNX), :func:`init_two_layer`;
* :mod:`~mini_adv.margin.training`: :func:`train` (GD or normalised GD, one jitted scan),
  :func:`train_kernel`, :class:`TrainHistory`, :func:`log_loss_terms`,
  :func:`normalized_gradient`;
* :mod:`~mini_adv.margin.kkt`: :func:`normalized_margin` γ̄(θ), :func:`kkt_check` (λ ≥ 0 by
  NNLS), :func:`unit_structure`;
* :mod:`~mini_adv.margin.robust`: :func:`universal_direction` û, :func:`robust_network`
  (certified radius), :func:`robust_params`;
* :mod:`~mini_adv.margin.experiments`: :func:`flip_distances`, :func:`flip_profiles`,
  :func:`sweep_n`, :func:`fit_flip_scaling`, :func:`regime_experiment` (the sweep inside
  the near-orthogonality n·μ(X) ≤ 1/3), :func:`cluster_experiment` (Frei et al. 2023).

Every name is importable from :mod:`mini_adv.margin` itself; the chapter's figures are in
:mod:`mini_adv.figures.ch5`.
"""

from mini_adv.margin.experiments import (ClusterResult, FlipDistances, FlipProfiles,
                                         FlipScalingFit, RegimeResult, SweepPoint,
                                         cluster_experiment, fit_flip_scaling, flip_distances,
                                         flip_profiles, regime_experiment, sweep_n)
from mini_adv.margin.kkt import (KKTReport, UnitStructure, kkt_check, normalized_margin,
                                 unit_structure)
from mini_adv.margin.network import TwoLayerNet, init_two_layer
from mini_adv.margin.robust import robust_network, robust_params, universal_direction
from mini_adv.margin.training import (DEFAULT_LR, LOSSES, METHODS, TrainHistory, log_loss_terms,
                                      normalized_gradient, train, train_kernel)

__all__ = [
    "ClusterResult", "DEFAULT_LR", "FlipDistances", "FlipProfiles", "FlipScalingFit",
    "KKTReport", "LOSSES", "METHODS", "RegimeResult", "SweepPoint", "TrainHistory", "TwoLayerNet",
    "UnitStructure", "cluster_experiment", "fit_flip_scaling", "flip_distances",
    "flip_profiles", "init_two_layer", "kkt_check", "log_loss_terms", "normalized_gradient",
    "normalized_margin", "regime_experiment", "robust_network", "robust_params", "sweep_n", "train", "train_kernel",
    "unit_structure", "universal_direction",
]

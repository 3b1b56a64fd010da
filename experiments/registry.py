"""The studies the runner knows, in report order: one line each.

Registering a new study is one line here: add its name and the module that runs it
(under ``experiments/studies/<kind>/``) to :data:`MODULES`, in report order.  The study
name is what ``python -m experiments run NAME`` takes; a module is named for what it
holds and never after a package of the project.  A study module provides

- ``Config``: a dataclass of every default (each field becomes a ``--flag``) with
  ``quick()`` returning the reduced version (``smoke()`` optionally: tiny data for the
  test suite; without it the runner shrinks the quick config generically, see
  :func:`experiments.runner.smoke_config`);
- ``run(cfg, log=print) -> dict``: trains, writes figures (PNG), tables (Markdown + CSV)
  and ``metrics.json`` into ``<cfg.out>/<NAME>/`` (``.../<cfg.run>/`` when the config has a
  ``run`` field) and returns the metrics;
- optionally ``NAME`` (default: the module name), ``QUESTION`` (default: the docstring's
  first line) and ``describe(metrics, config) -> str``, the report's paragraph read from
  the study's own numbers.
"""

MODULES = {
    # 1. two-layer MLP: curves, final test error, misclassified images
    "baseline": "experiments.studies.mlp.baseline",
    # 2. five seeds: spread of the final test error vs configurations
    "seeds": "experiments.studies.mlp.seeds",
    # 3. 10,000 validation images: (e_te*, e_va*) at the best epoch
    "validation": "experiments.studies.mlp.validation",
    # 4. hidden × batch × lr, and a 2-hidden-layer MLP at ≥ 97% validation
    "grid_search": "experiments.studies.mlp.grid_search",
    # 5. t-SNE of hidden features and raw pixels
    "features": "experiments.studies.mlp.features",
    # 6. 2,000 vs 50,000 training images: MLP (numpy) and LeNet (torch)
    "overfitting": "experiments.studies.mlp.overfitting",
    # 7. confusion matrix, hardest pairs, first-layer weight templates
    "errors": "experiments.studies.mlp.errors",
    # 8. zero, N(0, 1), Glorot
    "initializers": "experiments.studies.mlp.initializers",
    # 9. the same MLP in both engines: accuracy and epoch-time ratio
    "numpy_vs_torch": "experiments.studies.mlp.numpy_vs_torch",
    # 10. the 8×8 digits lab: one sigmoid layer, MSE, full-batch GD
    "digits_lab": "experiments.studies.digits.digits_lab",
    # 11. the course CNN (SGD) vs the MLP: curves, weights counted, ≥ 98%
    "cnn_vs_mlp": "experiments.studies.cnn.cnn_vs_mlp",
    # 12. pooling before vs after ReLU / tanh: commutation, time, accuracy
    "pool_order": "experiments.studies.cnn.pool_order",
    # 13. Adam vs SGD on the CNN; six optimisers on the digits MLP
    "optimizers": "experiments.studies.cnn.optimizer_comparison",
    # 14. blocks of 2 and 3 pairs, with and without the skip
    "residual": "experiments.studies.cnn.residual_blocks",
    # 15. dropout + weight decay, BN + cosine, augmentation: curves, best model's errors
    "regularization": "experiments.studies.cnn.regularization",
    # 16. digits SimpleMLP: learning rate and hidden width sweeps
    "digits_sweeps": "experiments.studies.digits.digits_sweeps",
    # 17. digits: L1, L2 (λ = 0.001) and the ComplexMLP vs the plain SimpleMLP
    "digits_penalties": "experiments.studies.digits.digits_penalties",
    # 18. CNN vs MLP at equal parameter count, and dropout
    "equal_size": "experiments.studies.cnn.equal_size",
    # 19. the tutorial LeNet: architecture, 2,000 vs 50,000 images, ≥ 98%
    "lenet_tutorial": "experiments.studies.cnn.lenet_tutorial",
    # V-shaped error of central differences vs back-propagation
    "finite_differences": "experiments.studies.mlp.finite_differences",
    # the MLP with dropout and Adam (≥ 98.3% test)
    "mlp_dropout_adam": "experiments.studies.mlp.mlp_dropout_adam",
    # the numpy course CNN and a stronger variant
    "numpy_cnn": "experiments.studies.cnn.numpy_cnn",
    # the torch CNNs, LeNet and MLPs
    "torch_baselines": "experiments.studies.cnn.torch_models",
    "speedrun": "experiments.studies.cnn.speedrun",  # training seconds to 99.0% and 99.5%, both engines
}

STUDIES = tuple(MODULES)

#: Old study names ``run`` still accepts, each mapped (with a note) to its name in MODULES.
ALIASES = {
    "regularisation": "regularization",   # identifiers use the American spelling
}

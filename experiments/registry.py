"""The studies the runner knows, in report order: one line each.

Registering a new study is one line here: add the name of its module under
``experiments/`` to :data:`STUDIES`.  A study module provides

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

STUDIES = (
    "baseline",            # 1. two-layer MLP: curves, final test error, misclassified images
    "seeds",               # 2. five seeds: spread of the final test error vs configurations
    "validation",          # 3. 10,000 validation images: (e_te*, e_va*) at the best epoch
    "grid_search",         # 4. hidden × batch × lr, and a 2-hidden-layer MLP at ≥ 97% validation
    "features",            # 5. t-SNE of hidden features and raw pixels
    "overfitting",         # 6. 2,000 vs 50,000 training images: MLP (numpy) and LeNet (torch)
    "errors",              # 7. confusion matrix, hardest pairs, first-layer weight templates
    "initializers",        # 8. zero, N(0, 1), Glorot
    "numpy_vs_torch",      # 9. the same MLP in both engines: accuracy and epoch-time ratio
    "digits_lab",          # 10. the 8×8 digits lab: one sigmoid layer, MSE, full-batch GD
    "cnn_vs_mlp",          # 11. the course CNN (SGD) vs the MLP: curves, weights counted, ≥ 98%
    "pool_order",          # 12. pooling before vs after ReLU / tanh: commutation, time, accuracy
    "optimizers",          # 13. Adam vs SGD on the CNN; six optimisers on the digits MLP
    "residual",            # 14. blocks of 2 and 3 pairs, with and without the skip
    "regularisation",      # 15. dropout + weight decay, BN + cosine, augmentation: curves, best model's errors
    "digits_sweeps",       # 16. digits SimpleMLP: learning rate and hidden width sweeps
    "digits_penalties",    # 17. digits: L1, L2 (λ = 0.001) and the ComplexMLP vs the plain SimpleMLP
    "equal_size",          # 18. CNN vs MLP at equal parameter count, and dropout
    "lenet_tutorial",      # 19. the tutorial LeNet: architecture, 2,000 vs 50,000 images, ≥ 98%
    "finite_differences",  # V-shaped error of central differences vs back-propagation
    "mlp_dropout_adam",    # the MLP with dropout and Adam (≥ 98.3% test)
    "numpy_cnn",           # the numpy course CNN and a stronger variant
    "torch_baselines",     # the torch CNNs, LeNet and MLPs
)

"""The course studies, one module each, grouped by kind (mlp, cnn, digits); see experiments/registry.py."""

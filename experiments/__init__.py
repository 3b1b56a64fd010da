"""One script per course experiment; run each with ``python -m experiments.<name>``."""

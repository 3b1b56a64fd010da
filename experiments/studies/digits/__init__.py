"""Studies of one kind; registered by name in experiments.registry."""

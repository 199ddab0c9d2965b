"""Evaluates an imported pipeline's expressions on the run's times when a run starts."""

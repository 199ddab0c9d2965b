"""Example code for datapipe users: transforms to run with `datapipe run`."""

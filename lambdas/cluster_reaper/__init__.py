"""Terminates the EMR clusters of a workflow execution that was stopped, timed out or failed."""

"""Ends the EMR workflow's waits on EMR's events: the callback of its .waitForTaskToken tasks."""

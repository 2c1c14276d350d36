"""Prefect flows composing the tasks in tasks/ (typed parameters, no infrastructure)."""

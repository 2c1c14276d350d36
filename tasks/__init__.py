"""Thin Prefect tasks: one call into breastflow each, retries and caching declared in the decorator."""

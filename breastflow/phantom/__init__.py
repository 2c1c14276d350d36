"""Deterministic multi-vendor breast DCE-MRI and mammography phantom cohorts."""

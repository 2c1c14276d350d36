"""Checkpoint selection: SAMe (Scaled Aggregate Measure) over per-checkpoint metric tables."""

"""Ray Train launchers and per-worker training loops; checkpoints hold the whole state and go to the object store."""

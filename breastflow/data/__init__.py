"""Training data access: slice/patch datasets read from the Zarr store (pre/post pairs, multi-phase stacks, lesion patches, mammogram views)."""

"""DICOM -> de-identified Zarr ingestion: planning, per-series work, Dask orchestration and reports."""

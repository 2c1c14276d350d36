"""The object store: layout (one place for every path), Zarr I/O, catalog and patient-level splits."""

"""breastflow: breast-imaging DICOM -> trustworthy synthetic data.

The library never imports Prefect: every function here takes plain arguments
(URLs, arrays, typed configs) and returns values, so it runs alike in a
notebook, a test, a Dask or Ray worker, or a thin Prefect task in ``tasks/``.
"""

__version__ = "0.1.0"

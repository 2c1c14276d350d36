"""Typed configuration of an ingest run (validated once, saved in the run report)."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from breastflow.dicom.classify import AcceptPolicy
from breastflow.store.splits import SplitConfig
from breastflow.store.zarr_io import ArrayLayout


class Executor(str, Enum):
    """Where an ingest run does its work.

    ``AUTO`` runs small jobs in this process (no cluster start, which costs
    seconds) and starts a Dask LocalCluster for large ones; ``IN_PROCESS`` and
    ``DASK`` force one or the other. A ``scheduler`` address always means Dask.
    """

    AUTO = "auto"
    IN_PROCESS = "in-process"
    DASK = "dask"


class ClusterConfig(BaseModel):
    """Where the Dask work runs.

    Attributes:
        executor: in-process, Dask, or decided from the planned work (see :class:`Executor`).
        in_process_max_files, in_process_max_bytes: ``AUTO`` runs in-process when
            the source holds at most this many files and (local sources) bytes.
        scheduler: address of a running Dask scheduler (``tcp://host:8786``);
            ``None`` starts a LocalCluster.
        workers: LocalCluster worker count.
        threads_per_worker: 1 keeps at most one series in a worker's memory.
        processes: LocalCluster with worker processes (True) or threads (False).
        memory_limit: per-worker memory limit for the LocalCluster (Dask syntax).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    executor: Executor = Executor.AUTO
    in_process_max_files: int = Field(default=10_000, ge=0)
    in_process_max_bytes: int = Field(default=4 * 10**9, ge=0)
    scheduler: str | None = None
    workers: int = Field(default=2, ge=1, le=512)
    threads_per_worker: int = Field(default=1, ge=1, le=64)
    processes: bool = True
    memory_limit: str = "auto"

    @model_validator(mode="after")
    def _scheduler_means_dask(self) -> ClusterConfig:
        if self.scheduler and self.executor is Executor.IN_PROCESS:
            raise ValueError("a scheduler address runs the ingest on Dask; drop it to run in-process")
        return self


class IngestConfig(BaseModel):
    """Everything that shapes an ingest run except where from and where to.

    Attributes:
        cluster: Dask cluster settings.
        array_layout: chunking/sharding/compression of written arrays.
        splits: patient-level split seed and fractions.
        retries: Dask retries of a series task after an unexpected (e.g. storage) error.
        probe_batch: files per header-probing task.
        accept: ``breast`` (default) stores MR series as pre/post/t2 only with breast
            evidence; ``any`` stores every acquired MR/MG series, roles from timing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cluster: ClusterConfig = ClusterConfig()
    array_layout: ArrayLayout = ArrayLayout()
    splits: SplitConfig = SplitConfig()
    retries: int = Field(default=2, ge=0, le=10)
    probe_batch: int = Field(default=256, ge=1)
    accept: AcceptPolicy = AcceptPolicy.BREAST

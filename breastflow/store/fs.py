"""Filesystem access for the store: one URL scheme for local paths and ``s3://``.

The store lives on any fsspec URL. Credentials never travel in code or YAML:
for S3 they come from the environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``) or an instance role, and an
S3-compatible endpoint (MinIO, moto) from ``AWS_ENDPOINT_URL``. Extra s3fs
options may be given as JSON in ``BREASTFLOW_STORAGE_OPTIONS``.

Only plain values (URL strings and small option dicts) are passed to Dask
workers; each worker builds its own filesystem from them.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import fsspec
from fsspec.core import url_to_fs

ENDPOINT_ENV = "AWS_ENDPOINT_URL"
OPTIONS_ENV = "BREASTFLOW_STORAGE_OPTIONS"
REMOTE_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "az", "abfs", "memory")


def is_remote(url: str) -> bool:
    """True when ``url`` names an object store (``s3://...``), False for a local path."""
    return "://" in url and url.split("://", 1)[0] not in ("file", "local")


def storage_options_from_env(url: str, env: Mapping[str, str] | None = None) -> dict:
    """fsspec storage options for ``url`` built from the environment.

    Args:
        url: store or source URL; local paths get ``{}``.
        env: environment mapping (defaults to ``os.environ``).

    Raises:
        ValueError: ``BREASTFLOW_STORAGE_OPTIONS`` is set but is not a JSON object.
    """
    env = os.environ if env is None else env
    if not is_remote(url):
        return {}
    options: dict = {}
    raw = env.get(OPTIONS_ENV)
    if raw:
        try:
            options = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"{OPTIONS_ENV} is not valid JSON: {err}") from err
        if not isinstance(options, dict):
            raise ValueError(f"{OPTIONS_ENV} must be a JSON object, got {type(options).__name__}")
    protocol = url.split("://", 1)[0]
    endpoint = env.get(ENDPOINT_ENV)
    if protocol in ("s3", "s3a") and endpoint:
        client_kwargs = dict(options.get("client_kwargs", {}))
        client_kwargs.setdefault("endpoint_url", endpoint)
        options["client_kwargs"] = client_kwargs
    return options


@dataclass(frozen=True)
class StoreLocation:
    """Where a store (or a source) lives: a URL plus its fsspec storage options.

    Attributes:
        url: local path or ``s3://bucket/prefix`` (no trailing slash).
        storage_options: options for fsspec/s3fs (endpoint etc.); no secrets needed
            when credentials come from the environment.
    """

    url: str
    storage_options: dict = field(default_factory=dict)

    @classmethod
    def from_url(cls, url: str, storage_options: dict | None = None) -> StoreLocation:
        """Normalise ``url`` and fill storage options from the environment when not given.

        Raises:
            ValueError: ``url`` is empty.
        """
        if not url or not url.strip():
            raise ValueError("store URL is empty; give a local path or an s3://bucket/prefix URL")
        url = url.strip().rstrip("/")
        if not is_remote(url):
            url = os.path.abspath(url.removeprefix("file://"))
        options = storage_options_from_env(url) if storage_options is None else dict(storage_options)
        return cls(url=url, storage_options=options)

    @property
    def remote(self) -> bool:
        return is_remote(self.url)

    def join(self, *parts: str) -> str:
        """The URL of ``parts`` below this location (POSIX separators)."""
        tail = "/".join(p.strip("/") for p in parts if p)
        return f"{self.url}/{tail}" if tail else self.url

    def filesystem(self) -> fsspec.AbstractFileSystem:
        """A fresh fsspec filesystem for this location (``use_listings_cache`` off)."""
        fs, _ = url_to_fs(self.url, use_listings_cache=False, **self.storage_options) if self.remote \
            else url_to_fs(self.url)
        return fs

    def fs_path(self, *parts: str) -> str:
        """The filesystem-native path of ``parts`` (bucket/key for S3, absolute path locally)."""
        _, path = url_to_fs(self.join(*parts), **(self.storage_options if self.remote else {}))
        return path


def atomic_write_bytes(loc: StoreLocation, relpath: str, data: bytes) -> None:
    """Write ``data`` to ``relpath`` so that readers see the old or the new object, never half.

    Locally: write a temporary sibling then ``os.replace``. On object storage a
    single PUT is already atomic, so the bytes are uploaded in one request.

    Args:
        loc: the store.
        relpath: path below the store root.
        data: the full object content.
    """
    fs = loc.filesystem()
    path = loc.fs_path(relpath)
    if loc.remote:
        fs.pipe_file(path, data)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_bytes(loc: StoreLocation, relpath: str) -> bytes:
    """The content of ``relpath`` below the store root.

    Raises:
        FileNotFoundError: the object does not exist.
    """
    return loc.filesystem().cat_file(loc.fs_path(relpath))


def exists(loc: StoreLocation, relpath: str) -> bool:
    """Whether ``relpath`` exists below the store root."""
    return loc.filesystem().exists(loc.fs_path(relpath))

"""A local S3-compatible endpoint (moto server on 127.0.0.1) for tests, benchmarks and demos.

This is a real HTTP S3 endpoint reached through s3fs/botocore exactly like AWS
or MinIO; only the server is in-process. Production uses MinIO or AWS
(see infra/README.md); nothing in the library depends on this module.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalS3:
    """A running moto S3 server.

    Attributes:
        endpoint_url: ``http://127.0.0.1:<port>``.
        port: its TCP port (stable across :meth:`restart`).
    """

    endpoint_url: str
    port: int
    server: object

    def stop(self) -> None:
        """Stop the HTTP server (bucket contents survive in this process's moto backend)."""
        self.server.stop()

    def start(self) -> None:
        """Start the HTTP server again on the same port."""
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def restart(self) -> None:
        """Stop and start the endpoint (simulates a storage outage)."""
        self.stop()
        self.start()

    def env(self) -> dict[str, str]:
        """Environment variables that point botocore/s3fs at this endpoint."""
        return {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url}

    def make_bucket(self, name: str) -> None:
        """Create a bucket (idempotent)."""
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass


@contextmanager
def local_s3(set_env: bool = True) -> Iterator[LocalS3]:
    """Run a moto S3 server on a free port of 127.0.0.1 for the duration of the block.

    Args:
        set_env: also export ``AWS_ENDPOINT_URL`` and dummy credentials into
            ``os.environ`` (restored afterwards), so that s3fs finds the endpoint.
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3 = LocalS3(endpoint_url=f"http://127.0.0.1:{port}", port=port, server=server)
    saved = {k: os.environ.get(k) for k in s3.env()}
    if set_env:
        os.environ.update(s3.env())
    try:
        yield s3
    finally:
        s3.stop()
        if set_env:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

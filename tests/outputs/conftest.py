"""Where kept outputs go in tests: a folder of the test's own, or a real S3-compatible server (moto in server
mode, on loopback) with a bucket of the test's own."""

from __future__ import annotations

import threading
import uuid

import boto3
import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from tests.outputs.serving_scene import completed

ACCESS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible server on loopback. It must start: a test that needs it fails without it, never skips."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # start() waits for the server with no time limit: a server that cannot bind would hang the suite.
    starting = threading.Thread(target=server.start, daemon=True)
    starting.start()
    starting.join(timeout=30)
    if starting.is_alive():
        pytest.fail("the S3-compatible server (moto) did not start within 30 s")
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def local_outputs(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "outputs": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path / "media"}},
    }
    return tmp_path / "media"


@pytest.fixture
def s3_outputs(settings, s3_server):
    """A fresh bucket, and STORAGES["outputs"] pointed at it as OUTPUT_S3_BUCKET would (dubdash/settings.py)."""
    bucket = f"outputs-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_server, **ACCESS)
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "outputs": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": s3_server,
                "access_key": ACCESS["aws_access_key_id"],
                "secret_key": ACCESS["aws_secret_access_key"],
                "region_name": ACCESS["region_name"],
                "file_overwrite": False,
                "default_acl": None,
                "querystring_auth": True,
                "querystring_expire": 300,
                "signature_version": "s3v4",
            },
        },
    }
    return client, bucket


@pytest.fixture(params=["local", "s3"])
def outputs_storage_kind(request):
    """Each test that takes it runs on local storage and on the S3-compatible server."""
    request.getfixturevalue("local_outputs" if request.param == "local" else "s3_outputs")
    return request.param


# Serving downloads (test_serving*.py): the job's owner, and a completed job of theirs.


@pytest.fixture
def media(settings, tmp_path):
    """The default outputs storage (a FileSystemStorage without a location of its own) under this test's
    MEDIA_ROOT: it follows the setting, so nothing here touches var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OUTPUT_KEEP = True
    return tmp_path / "media"


@pytest.fixture
def owner(cast):
    return cast.submitter


@pytest.fixture
def job(owner):
    return completed(owner, title="Episode 1", target_language="de")

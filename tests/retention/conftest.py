from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def archive_dir(settings, tmp_path):
    """Each test gets its own, empty archives and checkpoint storage on the filesystem."""
    settings.STORAGES = {
        **settings.STORAGES,
        "archives": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "archives")},
        },
        "audit_checkpoints": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "audit_checkpoints")},
        },
    }
    return tmp_path / "archives"


@pytest.fixture
def s3_archives(settings, aws):
    """The archives' storage on the local S3 server (moto's server mode on loopback), as production has it."""
    aws.client("s3").create_bucket(
        Bucket="terminal-archives", CreateBucketConfiguration={"LocationConstraint": aws.region}
    )
    settings.STORAGES = {
        **settings.STORAGES,
        "archives": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "terminal-archives",
                "location": "archives",
                "endpoint_url": aws.endpoint_url,
                "region_name": aws.region,
                "file_overwrite": False,
                "default_acl": None,
            },
        },
    }
    return aws

"""The archives' storage (``STORAGES["archives"]``) and writing to it once."""

from __future__ import annotations

from django.core.files import File
from django.core.files.storage import Storage, storages

from retention.errors import ArchiveExists

ALIAS = "archives"


def archive_storage() -> Storage:
    return storages[ALIAS]


def save_once(storage: Storage, name: str, content: File) -> None:
    """Save ``content`` as ``name``, never over an existing file; raise ArchiveExists if one is there.

    The existence check comes first; the storage is configured not to overwrite (``file_overwrite``
    False on S3), so a writer racing past the check gets another name, which is refused here too. On
    S3, versioning with Object Lock keeps even a deliberate overwrite from destroying a version.
    """
    if storage.exists(name):
        raise ArchiveExists(f"{name} is already stored: archives are written once.", extra={"file": name})
    saved = storage.save(name, content)
    if saved != name:
        raise ArchiveExists(
            f"{name} appeared while it was being written (saved as {saved} instead): another archiver ran.",
            extra={"file": name, "saved_as": saved},
        )

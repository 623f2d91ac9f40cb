"""The retention domain's errors: one ``ApplicationError`` family, each with a code and a human message."""

from __future__ import annotations

from core.errors import ApplicationError


class RetentionError(ApplicationError):
    code = "retention_error"
    status = 400


class RetentionRefused(RetentionError):
    """The database refused to delete a row inside the retention window or under a legal hold."""

    code = "retention_refused"
    status = 409


class MonthInvalid(RetentionError):
    code = "month_invalid"
    status = 422


class MonthNotClosed(RetentionError):
    code = "month_not_closed"
    status = 409


class ArchiveExists(RetentionError):
    """An archive (or one of its files) is already stored: archives are written once."""

    code = "archive_exists"
    status = 409


class ArchiveMissing(RetentionError):
    code = "archive_missing"
    status = 404


class ArchiveInvalid(RetentionError):
    """An archive that fails verification: ``extra["file"]`` names the bad file where there is one."""

    code = "archive_invalid"
    status = 422


class PurgeRefused(RetentionError):
    code = "purge_refused"
    status = 409

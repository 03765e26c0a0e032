"""The errors digitnet raises for a user's mistake or a bad file.

Each carries a one-line message that names the thing and the fix; the CLI prints it
without a traceback and exits with status 2.
"""


class DigitnetError(Exception):
    """Base class of every error meant to be shown to a user as one line."""


class DataError(DigitnetError):
    """A data set is missing, unreadable, corrupt or fails its checksum."""


class IdxFormatError(DataError):
    """An IDX file's header or contents do not match the IDX format."""


class DownloadError(DataError):
    """No mirror delivered a verified copy of a data file."""


class ModelFileError(DigitnetError):
    """A saved model or run folder is missing, corrupt or inconsistent."""


class ConfigError(DigitnetError):
    """An option or recipe value is invalid."""


def describe_os_error(exc: OSError) -> str:
    """One line for a failed read or write: what, why, and the fix."""
    import errno

    where = f"{exc.filename}: " if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return f"{where}no space left on device; free some space or write elsewhere (files already saved are intact)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}{exc.strerror}; choose a folder you can write to"
    return f"{where}{exc.strerror or exc}"

"""Errors a user can act on, each with the process exit code a scheduler can branch on."""


class CurationError(Exception):
    """Base class: a problem the user must fix; the CLI prints it as one line."""

    exit_code = 1


class ConfigError(CurationError):
    """A bad option, configuration file or metadata file."""

    exit_code = 2


class InputError(CurationError):
    """The input pool is missing, empty or lacks a required column."""

    exit_code = 3


class FailedFilesError(CurationError):
    """More input files failed than the configured share allows."""

    exit_code = 4


class RootBusyError(CurationError):
    """Another run holds the output root's lease."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class LeaseLostError(CurationError):
    """This run can no longer prove it holds the output root's lease (another run took it over): it stops before
    writing more."""

    exit_code = 75  # EX_TEMPFAIL: run again when the root is free


class NoSpaceError(CurationError):
    """The output's device is full."""

    exit_code = 74  # EX_IOERR


INTERNAL_ERROR_EXIT_CODE = 70


def is_out_of_space(error: BaseException) -> bool:
    """A full device, as Python (ENOSPC) or Java/Hadoop ("No space left on device") reports it, at any depth."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, OSError) and error.errno == 28:  # ENOSPC
            return True
        if "No space left on device" in str(error):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False  # EX_SOFTWARE: a bug or a crash, not the user's input

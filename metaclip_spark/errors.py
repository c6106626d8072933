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


INTERNAL_ERROR_EXIT_CODE = 70  # EX_SOFTWARE: a bug or a crash, not the user's input

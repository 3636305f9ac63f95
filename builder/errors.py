"""The exceptions a command ends with; ``cli.main`` turns each into a message, a JSON record
(``--json``) and an exit code."""


class UserError(Exception):
    """A problem in the user's input or environment, with what to do about it.

    The CLI prints the message on stderr, without a traceback, and exits with 2.
    """


class DiskSpaceError(UserError):
    """Not enough free space where the builder writes (exit 3); says where, how much."""

    def __init__(self, message, directory, free_bytes, needed_bytes):
        UserError.__init__(self, message)
        self.details = {"directory": directory, "free_bytes": free_bytes,
                        "needed_bytes": needed_bytes}


class VerifyFailed(Exception):
    """The engine loaded but its output is not sane (exit 1); the result was printed."""

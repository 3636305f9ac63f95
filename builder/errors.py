"""The one exception type for mistakes a user can fix."""


class UserError(Exception):
    """A problem in the user's input or environment, with what to do about it.

    The CLI prints the message on stderr, without a traceback, and exits with 2.
    """

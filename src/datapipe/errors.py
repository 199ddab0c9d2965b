"""The one error type the CLI turns into a one-line message and a non-zero exit."""


class DatapipeError(Exception):
    """A problem the user can fix: the message names the field or object that is wrong.

    `exit_code` lets a command distinguish "bad input" (2) from "the work failed" (1).
    """

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code

"""Named exceptions whose messages a researcher can act on."""


class LingualoopError(Exception):
    """Base class: the message is meant for the person at the keyboard."""


class NotFoundError(LingualoopError):
    """A project, user or post that was asked for does not exist."""


class AlreadyExistsError(LingualoopError):
    """Creating something whose name is taken."""


class InputFileError(LingualoopError):
    """A file that cannot be read at all (wrong format, not UTF-8, truncated, missing column)."""


class RowProblem:
    """One problem with one row of an input file."""

    __slots__ = ("column", "index", "location", "message")

    def __init__(self, location: str, column: str | None, message: str, index: int = -1) -> None:
        self.index = index
        """Position of the row in the file's rows (0-based), for skipping it."""
        self.location = location
        self.column = column
        self.message = message

    def __str__(self) -> str:
        where = f"{self.location}, column '{self.column}'" if self.column else self.location
        return f"{where}: {self.message}"


class ImportValidationError(LingualoopError):
    """Rows of an input file failed validation; nothing was imported."""

    def __init__(self, problems: list[RowProblem], total: int, shown: int = 10) -> None:
        self.problems = problems
        self.total = total
        lines = [str(p) for p in problems[:shown]]
        more = total - len(lines)
        if more > 0:
            lines.append(f"... and {more} more")
        self.summary = f"{total} row(s) failed validation; nothing was imported."
        super().__init__(self.summary + "\n  " + "\n  ".join(lines))


class PermissionDeniedError(LingualoopError):
    """The signed-in user's role does not allow this action."""

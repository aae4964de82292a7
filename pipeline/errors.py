"""Errors that are shown to analysts: they name the file, the record and the reason."""

from __future__ import annotations


class InputError(Exception):
    """A problem with an input file that the analyst must fix or know about."""

    def __init__(self, file: str, record: str | None, reason: str) -> None:
        self.file = str(file)
        self.record = record
        self.reason = reason
        where = f"{self.file}" + (f", {record}" if record else "")
        super().__init__(f"{where}: {reason}")


class ModelFileError(InputError, ValueError):
    """A model file that is missing, unreadable, changed since it was recorded, or unsafe to load.

    An `InputError` (one line naming the file and the reason; the CLI shows it without a traceback) and a
    `ValueError` for callers that catch the older error."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(str(path), None, reason)

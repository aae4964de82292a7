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

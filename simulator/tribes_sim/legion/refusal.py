"""How Legion refuses an operation: an HTTP status and a contract error code."""

from __future__ import annotations


class LegionRefusal(Exception):
    """A refused or failed Legion operation (HTTP status + contract error code)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

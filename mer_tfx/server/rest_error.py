"""The error a REST request is answered with: `{"error": message}` and an HTTP status.

Raised by the version manager (404 for an unknown version or label), the JSON codec
(400 for a malformed body) and the HTTP handler (405, 411, 413); the handler turns
it into TF Serving's error answer.
"""

from __future__ import annotations


class RestError(Exception):
    """An error answered to the client as `{"error": message}` with an HTTP status."""

    def __init__(self, status: int, message: str, *, allow: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.allow = allow  # the Allow header of a 405

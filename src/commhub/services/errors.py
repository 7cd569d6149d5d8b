"""The few errors a use case reports; the web and CLI layers turn them into problems/messages."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a caller can act on."""


class NotFound(ServiceError):
    """The thing asked for does not exist (or was merged away)."""

    def __init__(self, what: str, ident: object, *, merged_into: int | None = None) -> None:
        self.what = what
        self.ident = ident
        self.merged_into = merged_into
        detail = f"{what} {ident} not found"
        if merged_into is not None:
            detail = f"{what} {ident} was merged into {merged_into}"
        super().__init__(detail)


class Conflict(ServiceError):
    """The change would break a uniqueness rule (a username, an extension)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class Forbidden(ServiceError):
    """The caller's role may do this, but not with this value; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class InvalidInput(ServiceError):
    """A value failed a business rule; ``field`` names it for the client."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)

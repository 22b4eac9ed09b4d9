"""The error hierarchy; one handler in app.py maps it to the envelope."""

from typing import Any


class TallyError(Exception):
    """An error with a contract code, a message for people and an HTTP status."""

    code = "INTERNAL_ERROR"
    status = 500

    def __init__(
        self, message: str, *, details: dict[str, Any] | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class ValidationFailed(TallyError):
    code = "VALIDATION_ERROR"
    status = 400

    @classmethod
    def field(cls, field: str, message: str) -> "ValidationFailed":
        return cls(
            f"{field}: {message}", details={"errors": [{"field": field, "message": message}]}
        )


class InvalidDateRange(TallyError):
    code = "INVALID_DATE_RANGE"
    status = 400


class InvalidApiKey(TallyError):
    code = "INVALID_API_KEY"
    status = 401


class InsufficientScope(TallyError):
    code = "INSUFFICIENT_SCOPE"
    status = 403


class CompanyNotAccessible(TallyError):
    code = "COMPANY_NOT_ACCESSIBLE"
    status = 403


class NotFound(TallyError):
    code = "NOT_FOUND"
    status = 404


class Conflict(TallyError):
    code = "CONFLICT"
    status = 409


class EventConflict(Conflict):
    code = "EVENT_CONFLICT"


class PayloadTooLarge(TallyError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413


class UnsupportedMediaType(TallyError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415


class InvalidEvents(TallyError):
    code = "INVALID_EVENTS"
    status = 422


class NoCreditPricing(TallyError):
    code = "NO_CREDIT_PRICING"
    status = 422


class ServiceUnavailable(TallyError):
    """Overloaded or the database not reachable in time; nothing was done."""

    code = "SERVICE_UNAVAILABLE"
    status = 503
    # Seconds a client should wait before trying again (the Retry-After header).
    retry_after = 1

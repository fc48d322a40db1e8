"""Errors of the data services as RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from medlake.errors import MedlakeError

__all__ = [
    "PROBLEM_TYPE",
    "AuditUnavailableError",
    "Problem",
    "ServiceError",
    "problem_body",
    "problem_responses",
]

PROBLEM_TYPE = "application/problem+json"


class Problem(BaseModel):
    """A problem detail: what went wrong, for which request."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    instance: str = ""


class ServiceError(MedlakeError):
    """A request the service refuses or cannot answer; carries its HTTP status and a title."""

    def __init__(self, status: int, title: str, detail: str = "", headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class AuditUnavailableError(ServiceError):
    """The request's audit record cannot be written, so the request is not answered."""

    def __init__(self, cause: str) -> None:
        super().__init__(503, "Audit unavailable", f"the audit record cannot be written ({cause}); not served")


def problem_body(status: int, title: str, detail: str = "", instance: str = "", **extra: Any) -> dict[str, Any]:
    return Problem(title=title, status=status, detail=detail, instance=instance, **extra).model_dump()


_TITLES = {
    400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found", 413: "Request body too large",
    415: "Unsupported media type", 422: "Invalid parameters", 429: "Too many requests", 503: "Audit unavailable",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses, each a problem+json body."""
    return {status: {"model": Problem, "description": _TITLES[status],
                     "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for status in statuses}

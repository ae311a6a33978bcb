"""Typed exceptions: one class per way a call can fail.

Every exception the SDK raises on purpose is an :class:`OmniSyncError`. Errors the REST
API answers are :class:`ApiError` subclasses chosen by HTTP status, the same mapping the
Go client makes (``api/status.go``): 400 and other 4xx :class:`BadRequest`, 401
:class:`Unauthorized`, 402 :class:`InsufficientFunds`, 403 :class:`Forbidden`, 404
:class:`NotFound`, 409 :class:`Conflict`, 429 :class:`TooManyRequests`, 502/503/504
:class:`Unavailable`, other 5xx
:class:`ServerError`. A route the server does not have (yet) is
:class:`NotSupportedByServer`, never :class:`NotFound`. A request that none of a client's
several URLs served is a :class:`FailoverError`.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Sequence, Tuple


class OmniSyncError(Exception):
    """Base class of every error the SDK raises on purpose."""


class SpecError(OmniSyncError, ValueError):
    """A job spec (or a request built from it) is wrong before anything is sent.

    ``field`` names the field as the server would (``workload.image``, ``inputs[1].name``),
    ``msg`` says what is wrong with it.
    """

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(f"{field}: {msg}")
        self.field = field
        self.msg = msg


class EncodingError(OmniSyncError, ValueError):
    """Bytes that should be a .npy file or an OMT1 matrix are not, or not the kind wanted."""


class ArchiveError(OmniSyncError, ValueError):
    """A container job's output archive is not what a node writes (see ``api/archive.go``)."""


class KeyFileError(OmniSyncError, ValueError):
    """A key file is not a Solana CLI keypair (a JSON array of 64 bytes) or is inconsistent."""


class TransportError(OmniSyncError, ConnectionError):
    """The REST API could not be reached, or the connection broke before it answered."""


class DigestMismatch(OmniSyncError):
    """Downloaded bytes do not hash to the digest the server or the chain names."""


class UnverifiedResult(OmniSyncError):
    """The output exists but the chain has not settled it as verified (yet).

    Pass ``allow_unverified=True`` to :meth:`omnisync.Client.result` to take the node's word.
    """

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(
            f"job {job_id} is {status}: its output has not been verified by the chain; "
            "wait for it to settle, or pass allow_unverified=True to take the node's word"
        )
        self.job_id = job_id
        self.status = status


class WaitTimeout(OmniSyncError, TimeoutError):
    """:meth:`omnisync.Client.wait` gave up before the job reached a final status.

    The job goes on; ``job`` is the last state seen (None if none was).
    """

    def __init__(self, job_id: str, timeout: float, job: Optional[Any] = None) -> None:
        super().__init__(f"job {job_id} did not finish within {timeout:g}s (it goes on)")
        self.job_id = job_id
        self.job = job


class JobFailed(OmniSyncError):
    """A job ended without settling verified (raised by ``wait(..., check=True)``)."""

    def __init__(self, job: Any) -> None:
        reason = " ".join(x for x in (job.error, job.verdict) if x)
        super().__init__(f"job {job.id} ended {job.status}, not settled verified" + (f": {reason}" if reason else ""))
        self.job = job


class InputUploadError(OmniSyncError):
    """The job was escrowed but one of its inputs could not be uploaded.

    The budget stays in escrow until the job times out; upload the input again with
    :meth:`omnisync.Client.upload_input` or cancel the job with
    :meth:`omnisync.Client.cancel` (a full refund).
    """

    def __init__(self, job_id: str, name: str, cause: BaseException) -> None:
        super().__init__(
            f"job {job_id} is escrowed but input {name!r} was not uploaded: {cause} "
            f"(upload it again, or cancel the job for a full refund)"
        )
        self.job_id = job_id
        self.input_name = name


class ApiError(OmniSyncError):
    """A non-2xx answer from the REST API.

    ``status`` is the HTTP status; ``message``, ``code`` and ``field`` are the server's JSON
    error body (``{"error", "code", "field"}``), empty when it sent none.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "",
        field: str = "",
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(message or f"{status} from {method} {path}".strip())
        self.status = status
        self.message = message
        self.code = code
        self.field = field
        self.method = method
        self.path = path
        self.retry_after: Optional[float] = None  # seconds, from a Retry-After header

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later (429, 502, 503, 504)."""
        return isinstance(self, (TooManyRequests, Unavailable))


class BadRequest(ApiError):
    """400, and any other 4xx the server does not send directly (413, 415, ...)."""


class Unauthorized(ApiError):
    """401: missing, malformed, expired or badly signed credentials."""


class InsufficientFunds(ApiError):
    """402: the account cannot cover the budget (nothing was escrowed)."""


class Forbidden(ApiError):
    """403: a known signer that may not do this (another consumer's job, say)."""


class NotFound(ApiError):
    """404 for a thing the server looked for: an unknown job, account or input name."""


class Conflict(ApiError):
    """409: a wrong sequence, a duplicate, or a job not in a state that allows this."""


class Unavailable(ApiError):
    """503 (or a gateway's 502/504): try again later."""


class TooManyRequests(ApiError):
    """429: the signer has as many transactions waiting for a block as the chain takes.

    Nothing was done; the client sends the request again after ``retry_after`` seconds
    (a block, about) a few times before raising this.
    """


class FailoverError(TransportError):
    """No URL of a client of several served a request: each did not answer, or answered
    502, 503 or 504 (as the Go client's ``api.FailoverError``).

    ``failed`` holds (URL, error) for each, in the order tried. When any answered, the
    error is a :class:`FailoverUnavailable`, so ``except Unavailable`` catches it as well
    as ``except TransportError``.
    """

    def __init__(self, method: str, path: str, failed: Sequence[Tuple[str, OmniSyncError]]) -> None:
        super().__init__(_failover_message(method, path, failed))
        self.method = method
        self.path = path
        self.failed = list(failed)


class FailoverUnavailable(FailoverError, Unavailable):
    """A :class:`FailoverError` where at least one URL answered 502, 503 or 504: its
    ``status``, ``code`` and ``retry_after`` are the first answer's."""

    def __init__(self, method: str, path: str, failed: Sequence[Tuple[str, OmniSyncError]]) -> None:
        answer = next(e for _, e in failed if isinstance(e, ApiError))
        Unavailable.__init__(
            self, answer.status, _failover_message(method, path, failed), code=answer.code, field=answer.field, method=method, path=path
        )
        self.retry_after = answer.retry_after
        self.failed = list(failed)


def failover_error(method: str, path: str, failed: Sequence[Tuple[str, OmniSyncError]]) -> FailoverError:
    """The error for a request that none of failed's URLs served."""
    cls = FailoverUnavailable if any(isinstance(e, ApiError) for _, e in failed) else FailoverError
    return cls(method, path, failed)


def _failover_message(method: str, path: str, failed: Sequence[Tuple[str, OmniSyncError]]) -> str:
    parts = []
    for url, e in failed:
        if isinstance(e, ApiError):
            said = f" ({e.message})" if e.message != _default_message(e.status, e.method, e.path) else ""
            parts.append(f"{url} answered {e.status}{said}")
        else:
            parts.append(f"{url} did not answer ({e.__cause__ or e})")
    return f"{method} {path}: " + "; ".join(parts)


class ServerError(ApiError):
    """500 or another 5xx: the server failed; its log says why."""


class NotSupportedByServer(ApiError):
    """The server has no such route (404 from its router, or 405): a feature it lacks.

    This is distinct from :class:`NotFound`, which means the route exists and the thing
    asked for does not.
    """


_BY_STATUS = {
    400: BadRequest,
    401: Unauthorized,
    402: InsufficientFunds,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: TooManyRequests,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}

# The JSON 404 the Go server's router writes for a path it has no route for:
# "GET /v1/jobs/job-…/logs: not found" (internal/httpapi/handler.go, notRouted).
_UNROUTED = re.compile(r"^[A-Z]+ /\S*: not found$")


def error_for_response(
    status: int, body: Optional[Mapping[str, Any]], method: str, path: str, retry_after: Optional[str] = None
) -> ApiError:
    """Return the exception for a non-2xx answer.

    ``body`` is the decoded JSON error body, or None when the server sent something else
    (a proxy's HTML page, say).
    """
    message = code = field = ""
    if body is not None:
        message = str(body.get("error") or "")
        code = str(body.get("code") or "")
        field = str(body.get("field") or "")
    kw = dict(code=code, field=field, method=method, path=path)
    unrouted = status == 405 or (status == 404 and (body is None or bool(_UNROUTED.match(message))))
    if unrouted:
        what = f"{method} {path}"
        return NotSupportedByServer(
            status,
            f"the server does not support {what} (HTTP {status}): it predates this feature or is not an OmniSync router",
            **kw,
        )
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = BadRequest if 400 <= status < 500 else ServerError
    err = cls(status, message or _default_message(status, method, path), **kw)
    try:
        err.retry_after = float(retry_after) if retry_after else None
    except ValueError:
        err.retry_after = None  # an HTTP date: not sent by OmniSync servers
    return err


def _default_message(status: int, method: str, path: str) -> str:
    """An error's message when the server's answer carries none."""
    return f"HTTP {status} from {method} {path}"

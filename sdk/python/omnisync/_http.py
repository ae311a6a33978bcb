"""HTTP plumbing: one connection per request, errors mapped to typed exceptions, and a
reader for the server-sent events of GET /v1/jobs/{id}/events."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass
from typing import IO, Any, Dict, Iterator, Mapping, Optional, Tuple, Union
from urllib.parse import quote, urlsplit

from .errors import TooManyRequests, TransportError, error_for_response

Body = Union[bytes, IO[bytes], None]

# The longest an event stream may stay silent: the server sends a keep-alive comment
# every 15 seconds (as api.Client's streamIdleTimeout).
STREAM_IDLE_TIMEOUT = 60.0
_MAX_ERROR_BYTES = 1 << 20
_MAX_EVENT_LINE = 8 << 20
_BLOCK = 64 << 10  # bytes per write of a streamed upload


def normalize_base_url(url: str) -> Tuple[str, str, str]:
    """Split a REST URL as the daemons print it (``http://127.0.0.1:7070/v1``, with or
    without ``/v1``) into scheme, host:port and base path."""
    u = urlsplit(url.strip())
    if u.scheme not in ("http", "https") or not u.netloc:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    path = u.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")].rstrip("/")
    return u.scheme, u.netloc, path


_MAX_RETRY_AFTER = 10.0  # seconds: the longest wait a Retry-After is honoured for


def path_escape(segment: str) -> str:
    """Escape one path segment (``url.PathEscape``)."""
    return quote(segment, safe="-._~!$&'()*+,;=:@")


@dataclass
class Response:
    """A 2xx answer read whole."""

    status: int
    headers: Dict[str, str]
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data)


class Transport:
    """Sends requests to one REST API. Holds no connection between calls, so it can be
    shared by threads."""

    def __init__(self, url: str, *, timeout: float = 30.0, ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self.scheme, self.netloc, self.base_path = normalize_base_url(url)
        self.url = f"{self.scheme}://{self.netloc}{self.base_path}"
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.retries_429 = 3  # how many times a 429 is sent again (see open)
        self.sleep = time.sleep  # a seam for tests

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.netloc, timeout=timeout, context=self.ssl_context, blocksize=_BLOCK)
        return http.client.HTTPConnection(self.netloc, timeout=timeout, blocksize=_BLOCK)

    def open(
        self,
        method: str,
        path: str,
        *,
        body: Body = None,
        content_length: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a request and return the open connection and a 2xx response (whose body the
        caller reads, then closes the connection), or raise the typed error.

        A 429 (the signer's transactions fill its queue until the next block; nothing was
        done) is sent again after its Retry-After, up to ``retries_429`` times, when the
        body can be sent again (none, or bytes)."""
        replayable = body is None or isinstance(body, (bytes, bytearray))
        attempt = 0
        while True:
            try:
                return self._open_once(method, path, body, content_length, headers, timeout)
            except TooManyRequests as e:
                if not replayable or attempt >= self.retries_429:
                    raise
                attempt += 1
                self.sleep(min(max(e.retry_after or 1.0, 0.1), _MAX_RETRY_AFTER))

    def _open_once(
        self,
        method: str,
        path: str,
        body: Body,
        content_length: Optional[int],
        headers: Optional[Mapping[str, str]],
        timeout: Optional[float],
    ) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = self._connection(self.timeout if timeout is None else timeout)
        hdrs = {"User-Agent": "omnisync-python"}
        hdrs.update(headers or {})
        if body is not None:
            if content_length is None and isinstance(body, (bytes, bytearray)):
                content_length = len(body)
            if content_length is not None:
                hdrs["Content-Length"] = str(content_length)
        try:
            conn.request(method, self.base_path + path, body=body, headers=hdrs)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise TransportError(f"{method} {self.url}{path}: cannot reach the OmniSync REST API: {e}") from e
        if resp.status // 100 != 2:
            try:
                raw = resp.read(_MAX_ERROR_BYTES)
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                conn.close()
            raise error_for_response(resp.status, _error_body(raw), method, path, resp.getheader("Retry-After"))
        return conn, resp

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Body = None,
        content_length: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Response:
        """Send a request and read its 2xx answer whole."""
        conn, resp = self.open(method, path, body=body, content_length=content_length, headers=headers, timeout=timeout)
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise TransportError(f"{method} {self.url}{path}: reading the answer: {e}") from e
        finally:
            conn.close()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)

    def call(self, method: str, path: str, payload: Optional[bytes] = None) -> Any:
        """Send payload (already-encoded JSON) when given and decode a JSON answer."""
        headers = {"Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        r = self.request(method, path, body=payload, headers=headers)
        try:
            return r.json()
        except ValueError as e:
            raise TransportError(f"{method} {path}: the answer is not JSON: {e}") from None


def _error_body(raw: bytes) -> Optional[Dict[str, Any]]:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) and isinstance(body.get("error"), str) else None


class StreamBroken(Exception):
    """The event stream ended or failed before a final status (internal: callers poll)."""


def read_events(
    conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, deadline: Optional[float]
) -> Iterator[Tuple[str, str]]:
    """Yield (event name, data) from a server-sent event stream until it ends.

    Each read waits at most STREAM_IDLE_TIMEOUT, and no longer than deadline (a
    ``time.monotonic()`` value); past the deadline it raises socket.timeout. A stream
    that ends or fails raises StreamBroken.
    """
    sock = conn.sock
    name, data = "", []
    while True:
        wait = STREAM_IDLE_TIMEOUT
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
            if wait <= 0:
                raise socket.timeout("deadline")
        if sock is not None:
            sock.settimeout(wait)
        try:
            line = resp.readline(_MAX_EVENT_LINE)
        except socket.timeout:
            if deadline is not None and time.monotonic() >= deadline:
                raise
            raise StreamBroken("no data for a minute") from None
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise StreamBroken(str(e)) from e
        if not line:
            raise StreamBroken("stream ended")
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if text == "":
            if data:
                yield (name or "message"), "\n".join(data)
            name, data = "", []
            continue
        if text.startswith(":"):
            continue  # a keep-alive comment
        key, _, value = text.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)

"""HTTP plumbing: one connection per request, errors mapped to typed exceptions, failover
between several URLs, and a reader for the server-sent events of GET /v1/jobs/{id}/events."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote, urlsplit

from .errors import ApiError, OmniSyncError, TooManyRequests, TransportError, Unavailable, error_for_response, failover_error

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


@dataclass(frozen=True)
class _Base:
    """One REST API a transport sends to."""

    scheme: str
    netloc: str
    path: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}"


def _bases(urls: Union[str, Sequence[str]]) -> List[_Base]:
    """The APIs of a comma-separated list of URLs (or a sequence of them), empty ones left out."""
    parts = urls.split(",") if isinstance(urls, str) else list(urls)
    bases = [_Base(*normalize_base_url(u)) for u in parts if u.strip()]
    if not bases:
        raise ValueError(f"{urls!r} names no URL")
    return bases


# The POSTs sent on to another URL after one may have reached a server: signed
# transactions, which their sequence lets take effect once however often they are sent.
_REPLAYED_POSTS = ("/v1/jobs", "/v1/chain/txs")


def _in_memory(body: Body) -> bool:
    return body is None or isinstance(body, (bytes, bytearray))


def _replayable(method: str, path: str, body: Body) -> bool:
    """Whether a request may go to another URL after it may have reached a server already:
    a read or a signed transaction, and only with a body that can be sent again. An
    input's upload, its body streamed, is sent once."""
    if not _in_memory(body):
        return False
    if method in ("GET", "HEAD"):
        return True
    return method == "POST" and urlsplit(path).path in _REPLAYED_POSTS


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
    """Sends requests to one REST API, or to any of several (a comma-separated list of
    URLs, or a sequence of them, such as the routers of one cluster). Holds no connection
    between calls, so it can be shared by threads.

    With several URLs a request starts at the one that last answered, and while a URL does
    not answer, or answers 502, 503 or 504, a request that may be replayed (a read, or
    POST /v1/jobs or /v1/chain/txs with its body in memory) goes on to the next, each URL
    once; when none serves it the error is a :class:`~omnisync.errors.FailoverError`
    naming what each did. The request's timeout bounds the whole call, not each URL: each
    URL is given an equal share of what is left of it, so that a URL that never answers
    neither holds the call for longer than its timeout nor keeps the others from being
    tried. One URL behaves as a client of one API always has."""

    def __init__(
        self, url: Union[str, Sequence[str]], *, timeout: float = 30.0, ssl_context: Optional[ssl.SSLContext] = None
    ) -> None:
        self._bases = _bases(url)
        self.urls = tuple(b.url for b in self._bases)
        self.url = self.urls[0]
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.retries_429 = 3  # how many times a 429 is sent again (see open)
        self.sleep = time.sleep  # a seam for tests
        self.clock = time.monotonic  # a seam for tests
        self._start = 0  # the index of the URL requests start at: the last that answered
        self._start_lock = threading.Lock()

    def _connection(self, base: _Base, timeout: float) -> http.client.HTTPConnection:
        if base.scheme == "https":
            return http.client.HTTPSConnection(base.netloc, timeout=timeout, context=self.ssl_context, blocksize=_BLOCK)
        return http.client.HTTPConnection(base.netloc, timeout=timeout, blocksize=_BLOCK)

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
        caller reads, then closes the connection), or raise the typed error. With several
        URLs, a request one does not serve goes on to the next (see :class:`Transport`)."""
        _, conn, resp = self._send(method, path, body, content_length, headers, timeout)
        return conn, resp

    def open_stream(
        self, path: str, *, headers: Mapping[str, str], timeout: float
    ) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse, Callable[[], None]]:
        """GET an event stream as :meth:`open` does. Call the function it returns when the
        stream breaks: the next request then starts at the URL after the one that served it
        (unless a request since has moved the start)."""
        served, conn, resp = self._send("GET", path, None, None, headers, timeout)

        def broke() -> None:
            with self._start_lock:
                if self._start == served:
                    self._start = (served + 1) % len(self._bases)

        return conn, resp, broke

    def _send(
        self,
        method: str,
        path: str,
        body: Body,
        content_length: Optional[int],
        headers: Optional[Mapping[str, str]],
        timeout: Optional[float],
    ) -> Tuple[int, http.client.HTTPConnection, http.client.HTTPResponse]:
        """Open the request at each URL in turn from the start until one serves it, and
        return that URL's index with its connection and response."""
        replayable = _replayable(method, path, body)
        with self._start_lock:
            first = self._start
        budget = self.timeout if timeout is None else timeout
        deadline = self.clock() + budget
        failed: List[Tuple[str, OmniSyncError]] = []
        for i in range(len(self._bases)):
            n = (first + i) % len(self._bases)
            left = deadline - self.clock()
            if i > 0 and left <= 0:
                break  # the URLs left were not tried: the error names those that were
            share = left / (len(self._bases) - i)
            try:
                conn, resp = self._open_at(self._bases[n], method, path, body, content_length, headers, share)
            except (TransportError, Unavailable) as e:
                failed.append((self._bases[n].url, e))
                if not replayable:
                    break
                continue
            except ApiError:
                self._answered(n)  # any other answer is the answer
                raise
            self._answered(n)
            return n, conn, resp
        if len(failed) == 1:
            raise failed[0][1]
        raise failover_error(method, path, failed)

    def _answered(self, n: int) -> None:
        with self._start_lock:
            self._start = n

    def _open_at(
        self,
        base: _Base,
        method: str,
        path: str,
        body: Body,
        content_length: Optional[int],
        headers: Optional[Mapping[str, str]],
        timeout: float,
    ) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Open the request at base within timeout seconds. A 429 (the signer's
        transactions fill its queue until the next block; nothing was done) is sent again
        after its Retry-After, up to ``retries_429`` times, when the body can be sent again
        (none, or bytes) and the wait ends within the timeout."""
        deadline = self.clock() + timeout
        attempt = 0
        while True:
            try:
                return self._open_once(base, method, path, body, content_length, headers, timeout)
            except TooManyRequests as e:
                wait = min(max(e.retry_after or 1.0, 0.1), _MAX_RETRY_AFTER)
                if not _in_memory(body) or attempt >= self.retries_429 or self.clock() + wait >= deadline:
                    raise
                attempt += 1
                self.sleep(wait)
                timeout = deadline - self.clock()

    def _open_once(
        self,
        base: _Base,
        method: str,
        path: str,
        body: Body,
        content_length: Optional[int],
        headers: Optional[Mapping[str, str]],
        timeout: float,
    ) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = self._connection(base, timeout)
        hdrs = {"User-Agent": "omnisync-python"}
        hdrs.update(headers or {})
        if body is not None:
            if content_length is None and isinstance(body, (bytes, bytearray)):
                content_length = len(body)
            if content_length is not None:
                hdrs["Content-Length"] = str(content_length)
        try:
            conn.request(method, base.path + path, body=body, headers=hdrs)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise TransportError(f"{method} {base.url}{path}: cannot reach the OmniSync REST API: {e}") from e
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
        n, conn, resp = self._send(method, path, body, content_length, headers, timeout)
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise TransportError(f"{method} {self._bases[n].url}{path}: reading the answer: {e}") from e
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

"""The HTTP client adapters use: httpx's API over aiohttp's connection pool.

httpx's own async transport tops out at a few hundred requests per second on a small
machine with hundreds in flight; ``httpx-aiohttp``'s :class:`AiohttpTransport` keeps the
httpx API and scales like aiohttp. The client is created lazily, on first use, so it is
born inside the running event loop (an aiohttp session belongs to one loop), and one client
is shared by every source built together (see :class:`SharedClient`).

Tracking answers are small JSON bodies that are always read whole, so the transport reads
each one in a single call and hands httpx the bytes (no chunk iterator per answer), loads
the CA bundle on the first ``https`` request only, parses each distinct URL once, and the
client skips httpx's cookie jar bookkeeping for answers that set no cookie; what goes over
the wire is unchanged.

:func:`send_read` is what :func:`carriers.transport.send` sends with: for a client built by
:func:`make_client` that has no auth, no event hooks and does not follow redirects, it calls
the transport directly and builds the same response ``client.send`` would (status, headers,
body, ``request``, ``elapsed``, ``next_request``, cookies through the client's jar, the
``httpx`` log line), skipping httpx's auth, redirect and stream-wrapping layers (about a
third of httpx's per-request CPU). Any other client goes through ``client.send``.
"""

from __future__ import annotations

import datetime
import functools
import logging
import ssl
import time
import weakref
from importlib.metadata import PackageNotFoundError, version

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["ClientLease", "SharedClient", "make_client", "send_read"]

#: Connections kept open in total; requests beyond it wait for a free one.
DEFAULT_MAX_CONNECTIONS = 256

_SET_COOKIE = frozenset({b"set-cookie", b"set-cookie2"})
_TIMEOUTS_KEPT = 64
_URLS_KEPT = 256
_HTTPX_LOG = logging.getLogger("httpx")  # the logger httpx's client writes its line to


def _user_agent() -> str:
    try:
        return f"tracker/{version('tracker')}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "tracker"


@functools.cache
def _verified_context() -> ssl.SSLContext:
    """The verifying context httpx builds by default (certifi or ``SSL_CERT_FILE``), once."""
    return httpx.create_ssl_context()


def _unverifiable_context() -> ssl.SSLContext:
    """A context that trusts no CA: what the pool falls back to can only fail, never trust."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class _Transport(AiohttpTransport):
    """``httpx-aiohttp``'s transport (no proxy), reading each answer whole in aiohttp.

    Loading the CA bundle costs tens of milliseconds of CPU per client: it is loaded on the
    first ``https`` request (once per process) and passed with every ``https`` request.
    """

    def __init__(self, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, verify=_unverifiable_context())
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}
        self._urls: dict[str, tuple[yarl.URL, bool]] = {}

    def _client_timeout(self, timeout: dict[str, float | None]) -> aiohttp.ClientTimeout:
        """The aiohttp timeout for httpx's timeout extension, built once per distinct value."""
        key = (timeout.get("connect"), timeout.get("read"), timeout.get("pool"))
        found = self._timeouts.get(key)
        if found is not None:
            return found
        made = aiohttp.ClientTimeout(sock_connect=key[0], sock_read=key[1], connect=key[2])
        if len(self._timeouts) < _TIMEOUTS_KEPT:
            self._timeouts[key] = made
        return made

    def _target(self, url: httpx.URL) -> tuple[yarl.URL, bool]:
        """``url`` as aiohttp would parse it from ``str(url)``, and whether it is ``https``.

        Parsed once per distinct URL (a bounded number are kept): sources reuse a few.
        """
        text = str(url)
        found = self._urls.get(text)
        if found is not None:
            return found
        made = (yarl.URL(text), url.scheme == "https")
        if len(self._urls) < _URLS_KEPT:
            self._urls[text] = made
        return made

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through aiohttp and return the answer with its body read."""
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        session = self.client
        timeout = request.extensions.get("timeout", {})
        data: bytes | httpx.AsyncByteStream | None
        # aiohttp's errors are mapped to httpx's only when one happens: entering the mapping
        # context manager for every request costs more than the mapping itself
        try:
            try:
                data = request.content or None
            except httpx.RequestNotRead:
                data = request.stream  # type: ignore[assignment]
                request.headers.pop("transfer-encoding", None)  # aiohttp chunks it itself
            url, https = self._target(request.url)
            async with session.request(
                method=request.method,
                url=url,
                headers=_wire_headers(request.headers),
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=self._client_timeout(timeout),
                ssl=_verified_context() if https else True,
                server_hostname=request.extensions.get("sni_hostname"),
            ) as response:
                body = await response.read()
        except Exception:
            with map_aiohttp_exceptions():
                raise
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=httpx.ByteStream(body),
            request=request,
            extensions=extensions,
        )


def _wire_headers(headers: httpx.Headers) -> CIMultiDictProxy[str] | httpx.Headers:
    """What aiohttp makes of ``headers`` (``CIMultiDict(headers)``), built without detours.

    aiohttp converts httpx's headers through ``Headers.items()``: lower-case names, values
    of a repeated name joined with ``", "``, decoded with the encoding httpx guesses. For
    ASCII headers without repeats (every request we build) that is the list below, kept
    read-only per distinct set of headers (a source's requests differ in their length at
    most); any other headers are handed over as they are, for aiohttp to convert as before.
    """
    raw = tuple(headers.raw)
    found = _WIRE_HEADERS.get(raw)
    if found is not None:
        return found
    try:
        items = [(key.decode("ascii").lower(), value.decode("ascii")) for key, value in raw]
    except UnicodeDecodeError:
        return headers
    if len({key for key, _ in items}) != len(items):
        return headers
    made = CIMultiDictProxy(CIMultiDict(items))
    if len(_WIRE_HEADERS) < _HEADER_SETS_KEPT:
        _WIRE_HEADERS[raw] = made
    return made


_HEADER_SETS_KEPT = 512
_WIRE_HEADERS: dict[tuple[tuple[bytes, bytes], ...], CIMultiDictProxy[str]] = {}


def _extract_only_when_set(cookies: httpx.Cookies) -> None:
    """Make ``cookies`` skip httpx's cookie-jar round trip for answers setting no cookie.

    httpx runs every answer through :mod:`http.cookiejar`, building ``urllib`` request and
    response shims first: tens of µs per answer, the largest single item of httpx's own
    per-request work. Without a ``Set-Cookie`` header that adds nothing to the jar, so it is
    skipped; answers that do set cookies are handled exactly as before.
    """
    extract = cookies.extract_cookies

    def extract_cookies(response: httpx.Response) -> None:
        for key, _value in response.headers.raw:
            if key.lower() in _SET_COOKIE:
                extract(response)
                return

    cookies.extract_cookies = extract_cookies  # type: ignore[method-assign]


def make_client(
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    keepalive_s: float = 30.0,
    timeout_s: float = 10.0,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on the aiohttp transport; call it inside the event loop."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=keepalive_s,
    )
    transport = _Transport(limits=limits)
    client = httpx.AsyncClient(
        transport=transport,
        limits=limits,
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        headers={"user-agent": _user_agent()},
        follow_redirects=False,
    )
    _extract_only_when_set(client.cookies)
    _DIRECT[client] = transport
    return client


# Clients built by make_client, with their transport: no mounts (httpx only takes them at
# construction), no proxy, default encoding; what a caller may change later is re-checked.
_DIRECT: weakref.WeakKeyDictionary[httpx.AsyncClient, _Transport] = weakref.WeakKeyDictionary()


def _direct_transport(client: httpx.AsyncClient, request: httpx.Request) -> _Transport | None:
    """The transport ``client.send(request)`` would reach through no other httpx layer."""
    transport = _DIRECT.get(client)
    if (
        transport is None
        or client.is_closed  # client.send raises for that
        or client.follow_redirects
        or client.auth is not None
        or request.url.userinfo  # client.send would add basic auth from it
    ):
        return None
    hooks = client.event_hooks
    if hooks["request"] or hooks["response"]:
        return None
    # httpx's own choice of transport: respx (using="httpx") and mounts hook in here; a
    # future httpx without this private method simply takes the ordinary path
    transport_for_url = getattr(client, "_transport_for_url", None)
    chosen: object = None if transport_for_url is None else transport_for_url(request.url)
    return transport if chosen is transport else None


async def send_read(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """What ``client.send(request)`` returns once read and closed, the same for any client.

    Clients built by :func:`make_client` without auth, hooks or redirect following skip
    httpx's layers (the module docstring says what is kept); others use ``client.send``.
    """
    transport = _direct_transport(client, request)
    if transport is None:
        response = await client.send(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response
    if "timeout" not in request.extensions:
        request.extensions = dict(**request.extensions, timeout=client.timeout.as_dict())
    if not isinstance(request.stream, httpx.AsyncByteStream):
        raise RuntimeError("Attempted to send an sync request with an AsyncClient instance.")
    start = time.perf_counter()
    try:
        response = await transport.handle_async_request(request)
    except httpx.RequestError as exc:
        exc.request = request  # as httpx's request_context does
        raise
    response.request = request
    client.cookies.extract_cookies(response)
    if _HTTPX_LOG.isEnabledFor(logging.INFO):
        _HTTPX_LOG.info(
            'HTTP Request: %s %s "%s %d %s"',
            request.method,
            request.url,
            response.http_version,
            response.status_code,
            response.reason_phrase,
        )
    if response.has_redirect_location:
        # not followed: httpx still says where it would go (or raises for a bad Location)
        try:
            response.next_request = client._build_redirect_request(request, response)
        except BaseException:
            response.close()
            raise
    response.read()  # the transport hands over a ByteStream: no I/O here
    response.elapsed = datetime.timedelta(seconds=time.perf_counter() - start)
    return response


class SharedClient:
    """One lazily created client for many sources, closed when the last of them lets go.

    Each source calls :meth:`attach` when built and :meth:`release` from its ``aclose``;
    a client that was never used is never created, so building sources only to list them
    (``tracker check``) opens nothing.
    """

    def __init__(
        self, *, max_connections: int = DEFAULT_MAX_CONNECTIONS, timeout_s: float = 10.0
    ) -> None:
        self._max_connections = max_connections
        self._timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None
        self._users = 0

    def attach(self) -> None:
        """Count one more user."""
        self._users += 1

    def client(self) -> httpx.AsyncClient:
        """The client, created on first call (inside the running event loop)."""
        if self._client is None:
            self._client = make_client(
                max_connections=self._max_connections, timeout_s=self._timeout_s
            )
        return self._client

    async def release(self) -> None:
        """One user is done; the last one closes the client."""
        self._users -= 1
        if self._users <= 0:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the client now (if it was ever opened)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class ClientLease:
    """What one source holds: a caller's client (never closed here) or a share of one.

    ``http`` may be an ``httpx.AsyncClient`` (the caller owns and closes it), a
    :class:`SharedClient`, or ``None`` (the source gets a client of its own).
    """

    def __init__(self, http: object | None, *, timeout_s: float = 10.0) -> None:
        self._fixed: httpx.AsyncClient | None = None
        self._shared: SharedClient | None = None
        if http is None:
            self._shared = SharedClient(timeout_s=timeout_s)
        elif isinstance(http, SharedClient):
            self._shared = http
        elif isinstance(http, httpx.AsyncClient):
            self._fixed = http
        else:
            raise TypeError(f"http must be an httpx.AsyncClient or SharedClient, not {http!r}")
        if self._shared is not None:
            self._shared.attach()
        self._released = False

    def get(self) -> httpx.AsyncClient:
        """The client to send with."""
        if self._fixed is not None:
            return self._fixed
        assert self._shared is not None
        return self._shared.client()

    async def release(self) -> None:
        """Give the share back (once; later calls do nothing)."""
        if self._released:
            return
        self._released = True
        if self._shared is not None:
            await self._shared.release()

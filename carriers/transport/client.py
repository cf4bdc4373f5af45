"""The HTTP client adapters use: httpx's API over aiohttp's connection pool.

httpx's own async transport tops out at a few hundred requests per second on a small
machine with hundreds in flight; ``httpx-aiohttp``'s :class:`AiohttpTransport` keeps the
httpx API and scales like aiohttp. The client is created lazily, on first use, so it is
born inside the running event loop (an aiohttp session belongs to one loop), and one client
is shared by every source built together (see :class:`SharedClient`).

Tracking answers are small JSON bodies that are always read whole, so the transport reads
each one in a single call and hands httpx the bytes (no chunk iterator per answer), loads
the CA bundle on the first ``https`` request only, and the client skips httpx's cookie jar
bookkeeping for answers that set no cookie; what goes over the wire is unchanged.
"""

from __future__ import annotations

import functools
import ssl
from importlib.metadata import PackageNotFoundError, version

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

__all__ = ["ClientLease", "SharedClient", "make_client"]

#: Connections kept open in total; requests beyond it wait for a free one.
DEFAULT_MAX_CONNECTIONS = 256

_SET_COOKIE = frozenset({b"set-cookie", b"set-cookie2"})
_TIMEOUTS_KEPT = 64


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

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through aiohttp and return the answer with its body read."""
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        session = self.client
        timeout = request.extensions.get("timeout", {})
        data: bytes | httpx.AsyncByteStream | None
        with map_aiohttp_exceptions():
            try:
                data = request.content or None
            except httpx.RequestNotRead:
                data = request.stream  # type: ignore[assignment]
                request.headers.pop("transfer-encoding", None)  # aiohttp chunks it itself
            async with session.request(
                method=request.method,
                url=str(request.url),
                headers=request.headers,
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=self._client_timeout(timeout),
                ssl=_verified_context() if request.url.scheme == "https" else True,
                server_hostname=request.extensions.get("sni_hostname"),
            ) as response:
                body = await response.read()
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
    client = httpx.AsyncClient(
        transport=_Transport(limits=limits),
        limits=limits,
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        headers={"user-agent": _user_agent()},
        follow_redirects=False,
    )
    _extract_only_when_set(client.cookies)
    return client


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

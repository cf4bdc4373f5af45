"""The HTTP client adapters use: httpx's API over aiohttp's connection pool.

httpx's own async transport tops out at a few hundred requests per second on a small
machine with hundreds in flight; ``httpx-aiohttp``'s :class:`AiohttpTransport` keeps the
httpx API and scales like aiohttp. The client is created lazily, on first use, so it is
born inside the running event loop (an aiohttp session belongs to one loop), and one client
is shared by every source built together (see :class:`SharedClient`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["ClientLease", "SharedClient", "make_client"]

#: Connections kept open in total; requests beyond it wait for a free one.
DEFAULT_MAX_CONNECTIONS = 256


def _user_agent() -> str:
    try:
        return f"tracker/{version('tracker')}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "tracker"


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
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        limits=limits,
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        headers={"user-agent": _user_agent()},
        follow_redirects=False,
    )


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

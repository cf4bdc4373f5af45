"""SSRF guard: outgoing webhooks reach only public addresses unless private ones are allowed.

The host is resolved once, every address it resolves to is checked, and the request is then
sent to the checked address (the connection is pinned: ``Host`` and TLS SNI keep the name),
so a DNS answer that changes between the check and the connection cannot slip through.
Redirects are followed by hand, each hop checked the same way.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import certifi
import httpx

__all__ = [
    "Destination",
    "ForbiddenDestination",
    "Resolver",
    "check_destination",
    "guarded_post",
    "is_forbidden_address",
    "system_resolver",
]

#: resolves a host name to its IP addresses (injected in tests)
Resolver = Callable[[str, int], Awaitable[list[str]]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Cloud metadata services that a hostile URL would aim at; most are link-local or shared
# address space already, named here so the refusal says what they are.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"): "cloud metadata service",
    ipaddress.ip_address("100.100.100.200"): "Alibaba Cloud metadata service",
    ipaddress.ip_address("fd00:ec2::254"): "AWS metadata service (IPv6)",
}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class ForbiddenDestination(ValueError):
    """The URL points at an address outgoing requests may not reach."""


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked URL and the address the request will be pinned to (None: not pinned)."""

    url: httpx.URL
    address: str | None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def forbidden_reason(address: str) -> str | None:
    """Why ``address`` may not be reached (private, loopback, metadata...), or None if public."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    inner = _embedded_ipv4(ip)
    if inner is not None:
        inner_reason = forbidden_reason(str(inner))
        return f"{inner_reason} (embedded in {ip})" if inner_reason else None
    if ip in _METADATA:
        return _METADATA[ip]
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_private:
        return "private address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "reserved address"
    if not ip.is_global:
        return "non-public address"
    return None


def is_forbidden_address(address: str) -> bool:
    """True for loopback, private, link-local, metadata, reserved and other non-public IPs."""
    return forbidden_reason(address) is not None


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in seen:
            seen.append(address)
    return seen


async def check_destination(
    url: str | httpx.URL, *, allow_private: bool, resolver: Resolver = system_resolver
) -> Destination:
    """Resolve and check ``url``; raises ForbiddenDestination, or OSError when DNS fails."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise ForbiddenDestination(f"{parsed.scheme or 'no'} scheme: only http and https")
    host = parsed.host
    if not host:
        raise ForbiddenDestination("URL has no host")
    if allow_private:
        return Destination(parsed, None)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    addresses = [str(literal)] if literal is not None else await resolver(host, port)
    if not addresses:
        raise OSError(f"{host} did not resolve to any address")
    for address in addresses:
        reason = forbidden_reason(address)
        if reason:
            what = f"{host} is a" if literal is not None else f"{host} resolves to {address}, a"
            raise ForbiddenDestination(
                f"refused: {what} {reason} (set allow_private_networks = true to allow)"
            )
    return Destination(parsed, addresses[0])


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # built once: loading the CA bundle for every request costs tens of milliseconds
    return ssl.create_default_context(cafile=certifi.where())


def _pinned(destination: Destination) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    url = destination.url
    if destination.address is None:
        return url, {}, {}
    host_header = url.netloc.decode("ascii")
    pinned = url.copy_with(host=destination.address)
    extensions: dict[str, Any] = {}
    if url.scheme == "https":
        extensions["sni_hostname"] = url.host  # certificate checked against the name
    return pinned, {"host": host_header}, extensions


async def guarded_post(
    url: str,
    *,
    content: bytes,
    headers: dict[str, str],
    allow_private: bool,
    timeout_s: float = 10.0,
    resolver: Resolver = system_resolver,
    client: httpx.AsyncClient | None = None,
    max_redirects: int = 3,
) -> httpx.Response:
    """POST ``content`` to ``url`` through the SSRF guard, following checked redirects.

    Raises ForbiddenDestination (permanent), OSError for DNS trouble and httpx.HTTPError for
    transport trouble (both retryable). A redirect is re-sent as the same POST.
    """
    own = client is None
    http = client or httpx.AsyncClient(
        timeout=timeout_s, follow_redirects=False, verify=_tls_context()
    )
    try:
        target: str | httpx.URL = url
        for _hop in range(max_redirects + 1):
            destination = await check_destination(
                target, allow_private=allow_private, resolver=resolver
            )
            request_url, extra_headers, extensions = _pinned(destination)
            response = await http.post(
                request_url,
                content=content,
                headers={**headers, **extra_headers},
                extensions=extensions,
            )
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            target = destination.url.join(location)
        raise ForbiddenDestination(f"more than {max_redirects} redirects")
    finally:
        if own:
            await http.aclose()

"""The SSRF guard: literal IPs, names resolving to private addresses, redirects, pinning."""

from __future__ import annotations

import httpx
import pytest

from tracker.notify.ssrf import (
    ForbiddenDestination,
    check_destination,
    forbidden_reason,
    guarded_post,
)

PUBLIC = "93.184.216.34"


def resolver_for(table: dict[str, list[str]]):
    """A resolver answering from a table (no DNS traffic in tests)."""

    async def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return resolve


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("100.100.100.200", "Alibaba Cloud metadata"),
        ("fd00:ec2::254", "metadata"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "address"),
        ("224.0.0.1", "address"),
        ("100.64.0.1", "non-public"),
        ("::ffff:10.0.0.1", "private address (embedded"),
        ("64:ff9b::a00:1", "private address (embedded"),
    ],
)
def test_non_public_addresses_are_refused_with_the_reason(address: str, why: str) -> None:
    """Every non-public range is refused, and the reason says which."""
    assert why in (forbidden_reason(address) or "")


def test_public_addresses_pass() -> None:
    """Ordinary public IPv4 and IPv6 addresses are allowed."""
    assert forbidden_reason(PUBLIC) is None
    assert forbidden_reason("2606:2800:220:1:248:1893:25c8:1946") is None


async def test_literal_private_ip_url_is_refused() -> None:
    """http://10.0.0.5/ is refused before anything is sent."""
    with pytest.raises(ForbiddenDestination, match=r"10\.0\.0\.5 is a private address"):
        await check_destination("http://10.0.0.5/hook", allow_private=False)
    with pytest.raises(ForbiddenDestination, match="loopback"):
        await check_destination("http://[::1]:8080/hook", allow_private=False)


async def test_name_resolving_to_a_private_address_is_refused() -> None:
    """A public-looking name whose DNS answer includes a private address is refused."""
    resolve = resolver_for({"hooks.example.com": [PUBLIC, "10.0.0.7"]})
    with pytest.raises(ForbiddenDestination, match=r"hooks\.example\.com resolves to 10\.0\.0\.7"):
        await check_destination(
            "https://hooks.example.com/x", allow_private=False, resolver=resolve
        )


async def test_allow_private_networks_skips_the_check() -> None:
    """With allow_private_networks the URL is used as given, unpinned."""
    destination = await check_destination("http://127.0.0.1:9/x", allow_private=True)
    assert destination.address is None


async def test_only_http_and_https_are_allowed() -> None:
    """Other schemes are refused."""
    with pytest.raises(ForbiddenDestination, match="scheme"):
        await check_destination("ftp://example.com/x", allow_private=False)


async def test_request_is_pinned_to_the_checked_address() -> None:
    """The request goes to the resolved IP, with the name in Host and in TLS SNI."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        response = await guarded_post(
            "https://hooks.example.com:8443/x?y=1",
            content=b"{}",
            headers={"content-type": "application/json"},
            allow_private=False,
            resolver=resolver_for({"hooks.example.com": [PUBLIC]}),
            client=client,
        )
    assert response.status_code == 204
    (request,) = seen
    assert request.url.host == PUBLIC and request.url.port == 8443
    assert request.url.raw_path == b"/x?y=1"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


async def test_redirect_to_a_private_address_is_refused() -> None:
    """A public endpoint redirecting to the metadata service is not followed."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://169.254.169.254/latest/meta-data"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ForbiddenDestination, match="metadata"):
            await guarded_post(
                "http://hooks.example.com/x",
                content=b"{}",
                headers={},
                allow_private=False,
                resolver=resolver_for({"hooks.example.com": [PUBLIC]}),
                client=client,
            )
    assert seen == [f"http://{PUBLIC}/x"]  # the forbidden hop was never requested


async def test_redirect_to_a_name_resolving_privately_is_refused() -> None:
    """A redirect to a name that resolves to a private address is refused too."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(307, headers={"location": "https://internal.example.com/admin"})

    resolve = resolver_for({"hooks.example.com": [PUBLIC], "internal.example.com": ["192.168.0.2"]})
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ForbiddenDestination, match=r"internal\.example\.com resolves"):
            await guarded_post(
                "http://hooks.example.com/x",
                content=b"{}",
                headers={},
                allow_private=False,
                resolver=resolve,
                client=client,
            )


async def test_redirect_to_a_public_address_is_followed_with_the_same_post() -> None:
    """A redirect between public hosts is followed, re-sending the body; loops are bounded."""
    bodies: list[tuple[str, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.headers["host"], request.content))
        if request.headers["host"] == "old.example.com":
            return httpx.Response(308, headers={"location": "https://new.example.com/hook"})
        return httpx.Response(200)

    resolve = resolver_for({"old.example.com": [PUBLIC], "new.example.com": ["93.184.216.35"]})
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        response = await guarded_post(
            "http://old.example.com/x",
            content=b'{"a":1}',
            headers={},
            allow_private=False,
            resolver=resolve,
            client=client,
        )
    assert response.status_code == 200
    assert bodies == [("old.example.com", b'{"a":1}'), ("new.example.com", b'{"a":1}')]


async def test_redirect_loops_stop() -> None:
    """Endless redirects end with a refusal, not a hang."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "/again"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ForbiddenDestination, match="redirects"):
            await guarded_post(
                "http://hooks.example.com/x",
                content=b"",
                headers={},
                allow_private=False,
                resolver=resolver_for({"hooks.example.com": [PUBLIC]}),
                client=client,
            )

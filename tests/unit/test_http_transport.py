"""The client make_client builds, against a real local aiohttp server (no mocks).

Each behaviour is checked on the client as built and, where it matters, against
``httpx-aiohttp``'s stock transport: what the server receives and what the caller gets back
must not differ.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from http.cookiejar import CookieJar
from typing import Any

import httpx
import pytest
import trustme
from aiohttp import web
from httpx_aiohttp import AiohttpTransport

from carriers.transport import client as client_module
from carriers.transport import make_client
from carriers.transport.form import encode_form, form_request

BIG = "包裹".encode() * 400_000  # 2.4 MB, many reads from the socket
FORM = {"customer": "C1", "sign": "ABC", "param": '{"com":"yuantong","to":"浙江省杭州市 西湖区"}'}


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    seen = {
        "method": request.method,
        "path": request.path_qs,
        "headers": [[k.lower(), v] for k, v in request.headers.items()],
        "body": body.decode("utf-8"),
    }
    response = web.json_response(seen)
    if "cookie" in request.query:
        response.set_cookie("sid", request.query["cookie"])
    return response


async def _big(_request: web.Request) -> web.Response:
    return web.Response(body=BIG)


async def _slow(_request: web.Request) -> web.Response:
    await asyncio.sleep(2)
    return web.Response(text="late")


async def _serve(tls: ssl.SSLContext | None = None) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/big", _big)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"{'https' if tls else 'http'}://127.0.0.1:{port}"


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """A plain-HTTP echo server on a free port."""
    runner, url = await _serve()
    yield url
    await runner.cleanup()


def _stock_client() -> httpx.AsyncClient:
    """make_client's settings on httpx-aiohttp's unmodified transport (the reference)."""
    ours = make_client()
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256, keepalive_expiry=30)
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        limits=limits,
        timeout=ours.timeout,
        headers=ours.headers,
        follow_redirects=False,
    )


CLIENTS: dict[str, Callable[[], httpx.AsyncClient]] = {"ours": make_client, "stock": _stock_client}


async def test_form_post_arrives_and_answers_exactly_as_with_the_stock_transport(
    server: str,
) -> None:
    """Same request on the wire, same status, headers and body back, for both transports."""
    seen: dict[str, Any] = {}
    for name, build in CLIENTS.items():
        async with build() as client:
            response = await client.post(server + "/echo?x=1", data=FORM)
            assert response.status_code == 200
            assert response.elapsed.total_seconds() >= 0
            payload = response.json()
            headers = dict(response.headers)
            headers.pop("date")
            seen[name] = (payload, headers, response.http_version, response.reason_phrase)
    assert seen["ours"] == seen["stock"]
    payload = seen["ours"][0]
    assert payload["method"] == "POST" and payload["path"] == "/echo?x=1"
    assert httpx.QueryParams(payload["body"]) == httpx.QueryParams(FORM)
    assert ["content-type", "application/x-www-form-urlencoded"] in payload["headers"]
    assert any(k == "user-agent" and v.startswith("tracker") for k, v in payload["headers"])


async def test_bodiless_requests_and_large_answers_are_read_whole(server: str) -> None:
    """A GET without a body works, and a 2.4 MB answer arrives complete."""
    async with make_client() as client:
        response = await client.get(server + "/echo")
        assert response.json()["body"] == "" and response.json()["method"] == "GET"
        response = await client.get(server + "/big")
        assert response.content == BIG
        assert response.headers["content-length"] == str(len(BIG))


@pytest.mark.parametrize("name", list(CLIENTS))
async def test_cookies_set_by_an_answer_are_kept_and_sent_back(server: str, name: str) -> None:
    """A Set-Cookie answer fills the jar and the next request carries the cookie."""
    async with CLIENTS[name]() as client:
        await client.get(server + "/echo?cookie=s1")
        assert client.cookies.get("sid") == "s1"
        headers = (await client.get(server + "/echo")).json()["headers"]
        assert ["cookie", "sid=s1"] in headers


async def test_answers_setting_no_cookie_skip_the_cookie_jar(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The jar is consulted only for answers that set a cookie."""
    calls: list[object] = []
    async with make_client() as client:
        jar: CookieJar = client.cookies.jar
        original = jar.extract_cookies

        def spy(response: Any, request: Any) -> None:
            calls.append(response)
            original(response, request)

        monkeypatch.setattr(jar, "extract_cookies", spy)
        await client.post(server + "/echo", data=FORM)
        assert calls == []
        await client.get(server + "/echo?cookie=s2")
        assert len(calls) == 1 and client.cookies.get("sid") == "s2"


@pytest.mark.parametrize("name", list(CLIENTS))
async def test_slow_answer_is_an_httpx_read_timeout(server: str, name: str) -> None:
    """A server slower than the read timeout raises httpx's ReadTimeout, as before."""
    async with CLIENTS[name]() as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(server + "/slow", timeout=httpx.Timeout(5.0, read=0.2))


async def test_refused_connection_raises_what_the_stock_transport_raises() -> None:
    """Nothing listening: the same httpx TransportError subclass as httpx-aiohttp's own."""
    runner, url = await _serve()
    await runner.cleanup()  # the port is free again
    raised: dict[str, type[Exception]] = {}
    for name, build in CLIENTS.items():
        async with build() as client:
            with pytest.raises(httpx.TransportError) as caught:
                await client.get(url + "/echo")
            raised[name] = caught.type
    assert raised["ours"] is raised["stock"]


async def test_plain_http_never_loads_the_ca_bundle(server: str) -> None:
    """Building the client and polling over http:// leaves the CA bundle unloaded."""
    client_module._verified_context.cache_clear()
    async with make_client() as client:
        await client.post(server + "/echo", data=FORM)
    assert client_module._verified_context.cache_info().currsize == 0


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    """A throwaway CA with a certificate for 127.0.0.1."""
    return trustme.CA()


async def test_https_is_verified_with_the_loaded_context(
    authority: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An https request works with a trusted CA and fails, never passes unverified, without."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(tls)
    runner, url = await _serve(tls)
    try:
        trusting = ssl.create_default_context()
        authority.configure_trust(trusting)
        monkeypatch.setattr(client_module, "_verified_context", lambda: trusting)
        async with make_client() as client:
            response = await client.get(url + "/echo")
            assert response.status_code == 200 and json.loads(response.content)["path"] == "/echo"
        monkeypatch.setattr(client_module, "_verified_context", ssl.create_default_context)
        async with make_client() as client:
            with pytest.raises(httpx.TransportError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(url + "/echo")
    finally:
        await runner.cleanup()


# --- form requests built directly ------------------------------------------------------

FORM_URL = httpx.URL("https://poll.example.com/poll/query.do")
EXT = {"timeout": httpx.Timeout(7.0, connect=5.0).as_dict()}


def _same_request(a: httpx.Request, b: httpx.Request) -> None:
    """Method, URL, headers in order, body and extensions all equal."""
    assert (a.method, a.url, a.headers.raw, a.content, a.extensions) == (
        b.method,
        b.url,
        b.headers.raw,
        b.content,
        b.extensions,
    )


@pytest.mark.parametrize(
    ("configure", "direct"),
    [
        ({}, True),
        ({"headers": {"Authorization": "Bearer x", "X-Trace": "1"}}, True),
        ({"headers": {"Content-Type": "text/plain"}}, False),
        ({"cookies": {"sid": "1"}}, False),
        ({"params": {"lang": "zh"}}, False),
    ],
    ids=["make_client", "extra headers", "own content type", "cookies", "params"],
)
async def test_form_request_is_what_build_request_builds(
    configure: dict[str, Any], direct: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Equal to ``build_request(data=form)`` byte for byte; built directly when it can be."""
    form = {"customer": "C1", "sign": "AB=+/", "param": '{"to":"浙江省 杭州市","n":"a&b"}'}
    async with make_client() as client:
        for key, value in configure.items():
            setattr(client, key, value)
        reference = client.build_request("POST", FORM_URL, data=form, extensions=EXT)
        used: list[object] = []
        original = client.build_request
        monkeypatch.setattr(
            client, "build_request", lambda *a, **k: used.append(a) or original(*a, **k)
        )
        built = form_request(client, FORM_URL, form, EXT)
        _same_request(built, reference)
        assert built.content == encode_form(form)
        assert used == ([] if direct else [("POST", FORM_URL)])


async def test_source_posts_forms_as_build_request_would(server: str) -> None:
    """A source's form POST reaches the server exactly as a data= request does."""
    form = {"customer": "C1", "param": '{"com":"yuantong"}'}
    async with make_client() as client:
        direct = await client.send(form_request(client, httpx.URL(server + "/echo"), form, EXT))
        plain = await client.post(server + "/echo", data=form, extensions=EXT)
        assert direct.json() == plain.json()

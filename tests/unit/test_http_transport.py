"""The client make_client builds, against a real local aiohttp server (no mocks).

Each behaviour is checked on the client as built and, where it matters, against
``httpx-aiohttp``'s stock transport: what the server receives and what the caller gets back
must not differ.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import respx
import trustme
from aiohttp import web
from httpx_aiohttp import AiohttpTransport

from carriers.model import ErrorKind
from carriers.transport import GuardRegistry, RetryPolicy, make_client, send
from carriers.transport import client as client_module
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


async def _status(request: web.Request) -> web.Response:
    """``/status/{code}`` with a body; ``Retry-After`` on 429/503, ``Location`` on 3xx."""
    code = int(request.match_info["code"])
    response = web.Response(status=code, text=f"answer {code} 包裹")
    if code in (429, 503):
        response.headers["Retry-After"] = "7"
    if 300 <= code < 400:
        response.headers["Location"] = request.query.get("to", "/echo?from=redirect")
    if "cookie" in request.query:
        response.set_cookie("sid", request.query["cookie"])
    return response


async def _serve(tls: ssl.SSLContext | None = None) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/big", _big)
    app.router.add_route("*", "/status/{code}", _status)
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


# --- the direct send path ----------------------------------------------------------------


def _observed(response: httpx.Response, client: httpx.AsyncClient) -> dict[str, Any]:
    """Everything a caller can see of a read response and of the client's jar after it."""
    following = response.next_request
    return {
        "status": response.status_code,
        "reason": response.reason_phrase,
        "http_version": response.http_version,
        "headers": [(k, v) for k, v in response.headers.multi_items() if k != "date"],
        "content": response.content,
        "text": response.text,
        "json": response.json()
        if response.headers.get("content-type", "").endswith("json")
        else None,
        "next_request": None
        if following is None
        else (following.method, str(following.url), following.headers.raw),
        "history": response.history,
        "closed": (response.is_closed, response.is_stream_consumed),
        "elapsed_set": response.elapsed.total_seconds() >= 0,
        "cookies": sorted((c.name, c.value) for c in client.cookies.jar),
    }


async def _through_client_send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """What ``send`` did before the direct path: ``client.send``, then read and close."""
    response = await client.send(request)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


def _forbid_client_send(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``client.send`` fail the test: the direct path must not go through it."""

    async def refused(*_args: object, **_kwargs: object) -> httpx.Response:
        raise AssertionError("client.send used on the direct path")

    monkeypatch.setattr(client, "send", refused)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/echo?x=1"),
        ("GET", "/status/404"),
        ("GET", "/status/500"),
        ("POST", "/status/429"),
        ("GET", "/status/503"),
        ("GET", "/status/200?cookie=abc"),
        ("POST", "/status/302"),
        ("GET", "/status/307?to=https://elsewhere.example/next&cookie=r"),
    ],
    ids=["200 body", "404", "500", "429 retry-after", "503", "set-cookie", "302", "307 away"],
)
async def test_direct_send_answers_what_client_send_answers(
    server: str, method: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Status, headers, body, request, next_request, flags and cookies equal client.send's."""
    seen = []
    for direct in (True, False):
        async with make_client() as client:
            request = client.build_request(
                method, server + path, data=FORM if method == "POST" else None
            )
            if direct:
                _forbid_client_send(client, monkeypatch)
                response = await client_module.send_read(client, request)
            else:
                response = await _through_client_send(client, request)
            assert response.request is request
            seen.append(_observed(response, client))
    assert seen[0] == seen[1]
    expected = 200 if path.startswith("/echo") else int(path[len("/status/") :][:3])
    assert seen[0]["status"] == expected


async def test_direct_send_keeps_cookies_for_the_next_request(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cookie set by an answer on the direct path is sent with the next request."""
    async with make_client() as client:
        _forbid_client_send(client, monkeypatch)
        await client_module.send_read(
            client, client.build_request("GET", server + "/echo?cookie=k1")
        )
        assert client.cookies.get("sid") == "k1"
        echoed = await client_module.send_read(
            client, client.build_request("GET", server + "/echo")
        )
        assert ["cookie", "sid=k1"] in echoed.json()["headers"]


async def test_direct_send_raises_what_client_send_raises_for_a_bad_location(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A redirect to an unparsable Location raises httpx's RemoteProtocolError both ways."""
    path = "/status/301?to=http://%5B::1"
    raised = []
    for direct in (True, False):
        async with make_client() as client:
            request = client.build_request("GET", server + path)
            with pytest.raises(httpx.RemoteProtocolError) as caught:
                if direct:
                    _forbid_client_send(client, monkeypatch)
                    await client_module.send_read(client, request)
                else:
                    await _through_client_send(client, request)
            raised.append((type(caught.value), str(caught.value), caught.value.request is request))
    assert raised[0] == raised[1]


async def test_direct_send_timeouts_and_refusals_raise_as_client_send(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow answer and a refused connection raise the same httpx errors, request attached."""
    runner, closed = await _serve()
    await runner.cleanup()  # nothing listens there any more
    cases = [
        (server + "/slow", httpx.Timeout(5.0, read=0.2), httpx.ReadTimeout),
        (closed + "/echo", httpx.Timeout(5.0), httpx.TransportError),
    ]
    for url, timeout, expected in cases:
        raised = []
        for direct in (True, False):
            async with make_client() as client:
                request = client.build_request("GET", url, timeout=timeout)
                with pytest.raises(expected) as caught:
                    if direct:
                        _forbid_client_send(client, monkeypatch)
                        await client_module.send_read(client, request)
                    else:
                        await _through_client_send(client, request)
                raised.append((type(caught.value), caught.value.request is request))
        assert raised[0] == raised[1]
        assert raised[0][1] is True


@pytest.mark.parametrize("path", ["/slow", "/status/429", "/status/404"])
async def test_send_replies_the_same_on_both_paths(server: str, path: str) -> None:
    """``send`` gives the same reply (timeout error, 429 wait, 404) with either path."""
    guards = GuardRegistry()
    replies = []
    for direct in (True, False):
        async with make_client() as client:
            if not direct:
                client.event_hooks = {"request": [_no_op_hook], "response": []}
            request = client.build_request(
                "GET", server + path, timeout=httpx.Timeout(5.0, read=0.2)
            )
            guard = guards.get(f"p{direct}", rate_per_s=1000.0, burst=10)
            reply = await send(
                client,
                request,
                guard,
                clock=lambda: datetime.now(UTC),
                policy=RetryPolicy(attempts=1, max_wait_s=1.0),
            )
            error = reply.error
            replies.append(
                (
                    reply.status,
                    reply.body,
                    reply.retry_after_s,
                    reply.attempts,
                    None if error is None else (error.kind, error.message.split(":", 1)[1]),
                    guard.budget.paused_for() > 5,
                )
            )
    assert replies[0] == replies[1]
    if path == "/slow":
        assert replies[0][4] == (ErrorKind.NETWORK, " timed out (ReadTimeout)")
    elif path == "/status/429":
        assert replies[0][2] == 7.0 and replies[0][5] is True


async def _no_op_hook(_event: object) -> None:
    """An event hook that does nothing (its presence alone disables the direct path)."""


@pytest.mark.parametrize(
    "configure",
    ["auth", "follow_redirects", "request hook", "response hook", "userinfo", "closed"],
)
async def test_clients_with_other_settings_go_through_client_send(
    server: str, configure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Auth, redirect following, hooks, credentials in the URL or a closed client: client.send."""
    hooked: list[object] = []

    async def hook(event: object) -> None:
        hooked.append(event)

    client = make_client()
    url = server + "/status/302"
    if configure == "auth":
        client.auth = ("user", "pw")
    elif configure == "follow_redirects":
        client.follow_redirects = True
    elif configure == "request hook":
        client.event_hooks = {"request": [hook], "response": []}
    elif configure == "response hook":
        client.event_hooks = {"request": [], "response": [hook]}
    elif configure == "userinfo":
        url = server.replace("http://", "http://user:pw@") + "/echo"
    request = client.build_request("GET", url)
    if configure == "closed":
        await client.aclose()
        with pytest.raises(RuntimeError, match="client has been closed"):
            await client_module.send_read(client, request)
        return
    used: list[httpx.Request] = []
    original = client.send

    async def spy(req: httpx.Request, **kwargs: Any) -> httpx.Response:
        used.append(req)
        if configure == "userinfo":  # aiohttp itself refuses credentials in the URL
            return httpx.Response(200, request=req)
        return await original(req, **kwargs)

    monkeypatch.setattr(client, "send", spy)
    try:
        response = await client_module.send_read(client, request)
    finally:
        await client.aclose()
    assert used == [request]
    if configure == "follow_redirects":
        assert response.status_code == 200 and len(response.history) == 1
    elif configure in ("request hook", "response hook"):
        assert len(hooked) == 1
    elif configure == "auth":
        assert response.request.headers["authorization"].startswith("Basic ")


async def test_other_clients_and_respx_keep_client_send() -> None:
    """A MockTransport client and a respx-mocked make_client client answer from their mocks."""
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(201, text="mocked"))
    ) as client:
        response = await client_module.send_read(
            client, client.build_request("GET", "http://mock.test/x")
        )
        assert (response.status_code, response.text) == (201, "mocked")
    async with make_client() as client:
        with respx.mock(using="httpx", assert_all_called=True) as router:
            router.get("http://respx.test/y").respond(202, text="respx")
            response = await client_module.send_read(
                client, client.build_request("GET", "http://respx.test/y")
            )
        assert (response.status_code, response.text) == (202, "respx")


async def test_repeated_and_non_ascii_headers_reach_the_server_as_before(server: str) -> None:
    """Repeated names are joined and non-ASCII values decoded as the stock transport does."""
    headers = [("X-Twice", "a"), ("X-Twice", "b"), ("X-Plain", "1")]
    seen: dict[str, list[list[list[str]]]] = {}
    for name, build in CLIENTS.items():
        async with build() as client:
            for extra in (headers, [(b"X-Text", "caf\u00e9".encode())]):
                request = client.build_request("GET", server + "/echo", headers=extra)
                echoed = await client_module.send_read(client, request)
                seen.setdefault(name, []).append(
                    [h for h in echoed.json()["headers"] if h[0].startswith("x-")]
                )
    assert seen["ours"] == seen["stock"]
    assert seen["ours"][0] == [["x-twice", "a, b"], ["x-plain", "1"]]


async def test_each_distinct_url_is_parsed_once_and_the_cache_stays_bounded(
    server: str,
) -> None:
    """Repeated URLs reuse one parsed URL; many distinct ones do not grow the cache past its cap."""
    async with make_client() as client:
        transport = client_module._DIRECT[client]
        for _ in range(3):
            response = await client_module.send_read(
                client, client.build_request("GET", server + "/echo?q=%E5%8C%85 x")
            )
            assert response.json()["path"] == "/echo?q=%E5%8C%85%20x"
        assert len(transport._urls) == 1
        for i in range(client_module._URLS_KEPT + 10):
            await client_module.send_read(
                client, client.build_request("GET", f"{server}/echo?n={i}")
            )
        assert len(transport._urls) == client_module._URLS_KEPT
        tail = await client_module.send_read(
            client, client.build_request("GET", server + "/echo?n=late")
        )
        assert tail.json()["path"] == "/echo?n=late"


def test_encode_form_equals_urlencode_for_any_text() -> None:
    """The table-driven form encoder gives urlencode's bytes for random text, and falls back."""
    rng = random.Random(8)
    alphabet = [chr(i) for i in range(0x180)] + list("包裹浙江省 &=+%~\u3000\U0001f69a")
    for _ in range(3000):
        form = {
            "".join(rng.choices(alphabet, k=rng.randint(0, 5))): "".join(
                rng.choices(alphabet, k=rng.randint(0, 40))
            )
            for _ in range(rng.randint(0, 4))
        }
        assert encode_form(form) == urlencode(list(form.items()), doseq=True).encode("utf-8")
    odd: dict[str, Any] = {"n": 3, "list": ["a b", "c"]}
    assert encode_form(odd) == urlencode(list(odd.items()), doseq=True).encode("utf-8")

"""SSRF / path-traversal / size guards of media resolution. No test touches the network: resolvers
are monkeypatched and HTTP goes to an httpx.MockTransport."""

from __future__ import annotations

import asyncio
import base64
import os

import httpx
import pytest

from videochat.serve.errors import APIError
from videochat.serve.files import FileStore
from videochat.serve.media_source import (
    MediaResolver,
    check_remote_url,
    decode_data_url,
    fetch_remote,
    host_allowed,
    is_public_address,
    resolve_local_path,
    vetted_address,
)
from videochat.serve.settings import ServeSettings, parse_domains

PUBLIC = "93.184.216.34"


def _status(exc_info) -> tuple[int, str | None]:
    return exc_info.value.status, exc_info.value.code


# ---- data: URLs ------------------------------------------------------------------------------


def test_data_url_roundtrip():
    assert (
        decode_data_url("data:video/mp4;base64," + base64.b64encode(b"abc").decode(), 10) == b"abc"
    )


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("data:video/mp4,abc", 400),  # not base64
        ("data:video/mp4;base64,@@@@", 400),  # invalid base64 alphabet
        ("data:text/html;base64,PGI+", 415),  # not media
        ("data:video/mp4;base64,", 400),  # empty
        ("data:video/mp4;base64," + "A" * 40, 413),  # 30 bytes > 10
    ],
)
def test_data_url_refused(url, status):
    with pytest.raises(APIError) as err:
        decode_data_url(url, 10)
    assert err.value.status == status
    assert "Traceback" not in err.value.message


# ---- local paths -----------------------------------------------------------------------------


@pytest.fixture
def media_root(tmp_path):
    root = tmp_path / "allowed"
    root.mkdir()
    (root / "clip.mp4").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("secret")
    return root


def test_local_paths_disabled_by_default(media_root):
    with pytest.raises(APIError) as err:
        resolve_local_path(str(media_root / "clip.mp4"), None)
    assert err.value.status == 400 and "disabled" in err.value.message


def test_local_path_inside_root(media_root):
    expected = (media_root / "clip.mp4").resolve()
    assert resolve_local_path(str(media_root / "clip.mp4"), media_root) == expected
    assert resolve_local_path("clip.mp4", media_root) == expected
    assert resolve_local_path((media_root / "clip.mp4").as_uri(), media_root) == expected


@pytest.mark.parametrize(
    "ref",
    ["../secret.txt", "sub/../../secret.txt", "/etc/passwd", "file:///etc/passwd", "file://evil/x"],
)
def test_local_path_escapes_refused(media_root, ref):
    with pytest.raises(APIError) as err:
        resolve_local_path(ref, media_root)
    assert err.value.status == 400


def test_symlink_escape_refused(media_root, tmp_path):
    os.symlink(tmp_path / "secret.txt", media_root / "link.mp4")
    with pytest.raises(APIError) as err:
        resolve_local_path("link.mp4", media_root)
    assert _status(err) == (400, "path_not_allowed")


def test_missing_local_file_is_404(media_root):
    with pytest.raises(APIError) as err:
        resolve_local_path("nope.mp4", media_root)
    assert err.value.status == 404


# ---- remote URL validation -------------------------------------------------------------------


def test_domain_rules():
    allowed = parse_domains("Example.com, *.cdn.org")
    assert allowed == ("example.com", "*.cdn.org")
    assert host_allowed("example.com", allowed)
    assert host_allowed("a.cdn.org", allowed) and host_allowed("x.y.cdn.org", allowed)
    assert not host_allowed("cdn.org", allowed)
    assert not host_allowed("evilexample.com", allowed)
    assert not host_allowed("sub.example.com", allowed)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://example.com/v.mp4", "bad_url_scheme"),
        ("ftp://example.com/v.mp4", "bad_url_scheme"),
        ("https://user:pw@example.com/v.mp4", "bad_url"),
        ("https://other.com/v.mp4", "domain_not_allowed"),
        ("https://example.com.evil.net/v.mp4", "domain_not_allowed"),
    ],
)
def test_remote_url_refused(url, code):
    with pytest.raises(APIError) as err:
        check_remote_url(url, ("example.com",))
    assert _status(err) == (400, code)


def test_remote_disabled_by_default():
    with pytest.raises(APIError) as err:
        check_remote_url("https://example.com/v.mp4", ())
    assert err.value.code == "remote_media_disabled"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata (link-local)
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "100.64.0.1",  # carrier-grade NAT
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "ff02::1",
    ],
)
def test_non_public_addresses(address):
    assert not is_public_address(address)
    with pytest.raises(APIError) as err:
        vetted_address("example.com", 443, lambda host, port: [PUBLIC, address])
    assert err.value.code == "address_not_allowed"


def test_public_address_and_literal_hosts():
    assert is_public_address(PUBLIC) and is_public_address("2606:4700::1111")
    assert vetted_address("example.com", 443, lambda h, p: [PUBLIC]) == PUBLIC
    # an IP literal in the allow-list is still refused when it is private
    host, port = check_remote_url("https://127.0.0.1/x.mp4", ("127.0.0.1",))
    with pytest.raises(APIError):
        vetted_address(host, port, lambda h, p: [h])


def test_dns_failure_is_a_clear_400():
    def fail(host, port):
        raise OSError("no such host")

    with pytest.raises(APIError) as err:
        vetted_address("example.com", 443, fail)
    assert _status(err) == (400, "dns_failure")


# ---- fetching (mock transport, fake DNS) -----------------------------------------------------

DNS = {
    "example.com": [PUBLIC],
    "cdn.example.org": ["151.101.1.1"],
    "internal.example.org": ["10.0.0.5"],
}


def _resolver(host: str, port: int) -> list[str]:
    return DNS[host]


def _settings(**kw) -> ServeSettings:
    base = {"allowed_media_domains": ("example.com", "*.example.org"), "max_media_bytes": 1000}
    return ServeSettings(**{**base, **kw})


def _fetch(url: str, handler, **kw) -> bytes:
    transport = httpx.MockTransport(handler)
    return asyncio.run(fetch_remote(url, _settings(**kw), resolver=_resolver, transport=transport))


def test_fetch_pins_vetted_address_and_keeps_host_and_sni():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"video-bytes")

    assert _fetch("https://example.com/a/v.mp4?x=1", handler) == b"video-bytes"
    (request,) = seen
    assert request.url.host == PUBLIC and request.url.path == "/a/v.mp4"
    assert request.headers["host"] == "example.com"
    assert request.extensions["sni_hostname"] == "example.com"


def test_redirects_are_checked_at_every_hop():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["host"] == "example.com":
            return httpx.Response(302, headers={"location": "https://cdn.example.org/v.mp4"})
        return httpx.Response(200, content=b"ok")

    assert _fetch("https://example.com/v.mp4", handler) == b"ok"

    for target, code in [
        ("https://internal.example.org/v.mp4", "address_not_allowed"),  # allowed name, private IP
        ("https://elsewhere.net/v.mp4", "domain_not_allowed"),
        ("http://cdn.example.org/v.mp4", "bad_url_scheme"),
    ]:

        def redirect(request: httpx.Request, target=target) -> httpx.Response:
            return httpx.Response(301, headers={"location": target})

        with pytest.raises(APIError) as err:
            _fetch("https://example.com/v.mp4", redirect)
        assert err.value.code == code


def test_redirect_loop_is_bounded():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "/again"})

    with pytest.raises(APIError) as err:
        _fetch("https://example.com/v.mp4", handler, max_redirects=2)
    assert err.value.code == "too_many_redirects"


def test_size_cap_while_streaming_and_by_header():
    async def chunks():
        for _ in range(2):
            yield b"x" * 600

    def streamed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks())  # no length header: counted while streaming

    with pytest.raises(APIError) as err:
        _fetch("https://example.com/v.mp4", streamed)
    assert err.value.status == 413

    def declared(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": "5000"}, content=b"x")

    with pytest.raises(APIError) as err:
        _fetch("https://example.com/v.mp4", declared)
    assert err.value.status == 413


def test_http_error_status_and_transport_failure():
    with pytest.raises(APIError) as err:
        _fetch("https://example.com/v.mp4", lambda r: httpx.Response(404))
    assert err.value.code == "fetch_failed" and "404" in err.value.message

    def boom(request):
        raise httpx.ConnectTimeout("timed out", request=request)

    with pytest.raises(APIError) as err:
        _fetch("https://example.com/v.mp4", boom)
    assert err.value.code == "fetch_failed" and "ConnectTimeout" in err.value.message


def test_whole_download_has_one_time_budget():
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, content=b"late")

    with pytest.raises(APIError) as err:
        _fetch("https://example.com/v.mp4", slow, fetch_timeout_s=0.2)
    assert err.value.code == "fetch_timeout"


# ---- the resolver front door -----------------------------------------------------------------


def test_media_resolver_dispatch(tmp_path):
    store = FileStore(tmp_path / "up", max_files=4, max_bytes=1000)
    root = tmp_path / "media"
    root.mkdir()
    (root / "a.mp4").write_bytes(b"12345")
    resolver = MediaResolver(_settings(allowed_local_media_path=root), store, _resolver)
    resolver.transport = httpx.MockTransport(lambda r: httpx.Response(200, content=b"remote"))
    with open(root / "a.mp4", "rb") as upload:
        stored = store.add(upload, "../../evil name.mp4", "user_data")
    assert stored.filename == "evil name.mp4"

    async def run():
        return [
            await resolver.resolve("data:image/png;base64," + base64.b64encode(b"png").decode()),
            await resolver.resolve(stored.id),
            await resolver.resolve("a.mp4"),
            await resolver.resolve("https://example.com/v.mp4"),
        ]

    data, uploaded, local, remote = asyncio.run(run())
    assert data.source == b"png"
    assert uploaded.source.read_bytes() == b"12345" and uploaded.name == stored.id
    assert local.source == (root / "a.mp4").resolve()
    assert remote.source == b"remote" and remote.name == "v.mp4"
    with pytest.raises(APIError) as err:
        asyncio.run(resolver.resolve("file-" + "0" * 24))
    assert err.value.status == 404
    with pytest.raises(APIError) as err:
        asyncio.run(resolver.resolve("gopher://example.com/x"))
    assert err.value.code == "bad_url_scheme"
    store.close()


def test_file_store_bounds(tmp_path):
    import io

    store = FileStore(None, max_files=2, max_bytes=10)
    ids = [store.add(io.BytesIO(b"abc"), f"f{i}.mp4", "user_data").id for i in range(3)]
    assert [f.id for f in store.list()] == ids[1:]  # oldest dropped
    with pytest.raises(APIError) as err:
        store.add(io.BytesIO(b"x" * 11), "big.mp4", "user_data")
    assert err.value.status == 413
    with pytest.raises(APIError) as err:
        store.add(io.BytesIO(b""), "empty.mp4", "user_data")
    assert err.value.status == 400
    directory = store.directory
    store.close()
    assert not directory.exists()

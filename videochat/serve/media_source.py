"""Turn a media reference from a request into bytes or a vetted local path, safely.

Accepted references: `data:` URLs (base64), ids of files uploaded with POST /v1/files, local paths
(plain or `file://`) only under the allowed directory, and `https://` URLs only on allowed domains.
Remote fetching guards against SSRF: every hop's host is checked against the allow-list, resolved,
and refused if any address is not public; the connection is pinned to the vetted address (TLS still
verifies the real host name); redirects are followed by hand; the body is capped while streaming.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from videochat.serve.errors import APIError
from videochat.serve.settings import ServeSettings

Resolver = Callable[[str, int], list[str]]
FILE_ID_RE = re.compile(r"^file-[0-9a-f]{24}$")
_DATA_RE = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.I)
_MEDIA_MIME_PREFIXES = ("image/", "video/", "application/octet-stream")


@dataclass
class ResolvedMedia:
    """Media ready for the loader: raw bytes, or a path the server vetted."""

    source: bytes | Path
    name: str  # what error messages call it (never a server path the client did not send)


def decode_data_url(url: str, max_bytes: int) -> bytes:
    """Decode a base64 `data:` URL, refusing oversize payloads before decoding them."""
    match = _DATA_RE.match(url[:512])
    if match is None:
        raise APIError(
            400,
            "a data: URL must look like data:<type>/<subtype>;base64,<data>",
            code="bad_data_url",
        )
    mime = (match.group("mime") or "application/octet-stream").lower()
    if not mime.startswith(_MEDIA_MIME_PREFIXES):
        raise APIError(415, f"data: URL of type {mime!r} is not an image or video", code="bad_mime")
    payload = url[match.end() :]
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise APIError(
            413, f"media is larger than the {max_bytes} byte limit", code="media_too_large"
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, "the data: URL is not valid base64", code="bad_data_url") from None
    if not data:
        raise APIError(400, "the data: URL holds no data", code="bad_data_url")
    return data


def resolve_local_path(reference: str, allowed_root: Path | None) -> Path:
    """A local path (plain or file://) that really lies under `allowed_root` after symlinks."""
    if allowed_root is None:
        raise APIError(
            400,
            "local media paths are disabled on this server (start it with "
            "--allowed-local-media-path DIR to allow a directory)",
            code="local_path_not_allowed",
        )
    raw = reference
    if reference.startswith("file:"):
        parts = urlsplit(reference)
        if parts.netloc not in ("", "localhost"):
            raise APIError(400, "file:// URLs must name a local path", code="bad_url")
        raw = unquote(parts.path)
    root = Path(allowed_root).resolve(strict=True)
    candidate = Path(raw) if Path(raw).is_absolute() else root / raw
    resolved = candidate.resolve()  # follows symlinks and `..`
    if not resolved.is_relative_to(root):
        raise APIError(400, "media path is outside the allowed directory", code="path_not_allowed")
    if not resolved.is_file():
        raise APIError(404, f"no media file at {raw!r} in the allowed directory", code="not_found")
    return resolved


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Exact match, or a subdomain of an entry written `*.domain`."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def is_public_address(address: str) -> bool:
    """True only for globally routable unicast addresses (IPv4-mapped IPv6 judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses `host` resolves to (blocking; run it off the event loop)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def check_remote_url(url: str, allowed_domains: tuple[str, ...]) -> tuple[str, int]:
    """Validate scheme, credentials and domain of a remote URL; return (host, port)."""
    if not allowed_domains:
        raise APIError(
            400,
            "remote media URLs are disabled on this server (start it with "
            "--allowed-media-domains to allow some domains)",
            code="remote_media_disabled",
        )
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        raise APIError(400, "remote media must use https://", code="bad_url_scheme")
    if parts.username is not None or parts.password is not None:
        raise APIError(400, "remote media URLs must not carry credentials", code="bad_url")
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or 443
    except ValueError:
        raise APIError(400, "the media URL has an invalid port", code="bad_url") from None
    if not host or not host_allowed(host, allowed_domains):
        raise APIError(400, f"media domain {host!r} is not allowed", code="domain_not_allowed")
    return host, port


def vetted_address(host: str, port: int, resolver: Resolver) -> str:
    """Resolve `host` and return an address to connect to, if every address is public."""
    try:
        addresses = resolver(host, port)
    except OSError:
        raise APIError(400, f"cannot resolve media host {host!r}", code="dns_failure") from None
    if not addresses:
        raise APIError(400, f"cannot resolve media host {host!r}", code="dns_failure")
    if not all(is_public_address(a) for a in addresses):
        raise APIError(
            400, f"media host {host!r} resolves to a non-public address", code="address_not_allowed"
        )
    return addresses[0]


def _pinned_request(client: httpx.AsyncClient, url: str, host: str, address: str) -> httpx.Request:
    """A GET to `address` that still sends Host and TLS SNI (and verifies the cert) for `host`."""
    parts = urlsplit(url)
    ip_host = f"[{address}]" if ":" in address else address
    port = f":{parts.port}" if parts.port else ""
    target = parts._replace(netloc=f"{ip_host}{port}").geturl()
    return client.build_request(
        "GET",
        target,
        headers={"Host": parts.netloc.split("@")[-1], "Accept": "image/*, video/*"},
        extensions={"sni_hostname": host},
    )


async def _read_capped(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise APIError(
            413, f"remote media is larger than {max_bytes} bytes", code="media_too_large"
        )
    chunks, total = [], 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise APIError(
                413, f"remote media is larger than {max_bytes} bytes", code="media_too_large"
            )
        if time.monotonic() > deadline:
            raise APIError(400, "remote media download timed out", code="fetch_timeout")
        chunks.append(chunk)
    return b"".join(chunks)


async def fetch_remote(
    url: str,
    settings: ServeSettings,
    *,
    resolver: Resolver = system_resolver,
    transport: httpx.AsyncBaseTransport | None = None,
) -> bytes:
    """Download remote media under every guard (see module docstring), within one time budget."""
    try:
        return await asyncio.wait_for(
            _fetch(url, settings, resolver, transport), settings.fetch_timeout_s
        )
    except asyncio.TimeoutError:  # noqa: UP041 (distinct from TimeoutError on Python 3.10)
        msg = f"remote media download took longer than {settings.fetch_timeout_s:g} s"
        raise APIError(400, msg, code="fetch_timeout") from None


async def _fetch(
    url: str,
    settings: ServeSettings,
    resolver: Resolver,
    transport: httpx.AsyncBaseTransport | None,
) -> bytes:
    deadline = time.monotonic() + settings.fetch_timeout_s
    timeout = httpx.Timeout(settings.fetch_timeout_s)
    async with httpx.AsyncClient(
        follow_redirects=False, timeout=timeout, transport=transport, trust_env=False
    ) as client:
        for _hop in range(settings.max_redirects + 1):
            host, port = check_remote_url(url, settings.allowed_media_domains)
            address = await asyncio.to_thread(vetted_address, host, port, resolver)
            request = _pinned_request(client, url, host, address)
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                msg = f"could not download media from {host!r} ({type(exc).__name__})"
                raise APIError(400, msg, code="fetch_failed") from None
            try:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if response.status_code != 200:
                    msg = f"media URL answered HTTP {response.status_code}"
                    raise APIError(400, msg, code="fetch_failed")
                return await _read_capped(response, settings.max_media_bytes, deadline)
            finally:
                await response.aclose()
    raise APIError(400, "too many redirects fetching media", code="too_many_redirects")


class MediaResolver:
    """Resolves the references of one server (its settings, file store and network policy)."""

    def __init__(self, settings: ServeSettings, files, resolver: Resolver = system_resolver):
        self.settings = settings
        self.files = files
        self.resolver = resolver
        self.transport: httpx.AsyncBaseTransport | None = None  # tests inject a mock transport

    async def resolve(self, reference: str) -> ResolvedMedia:
        """Bytes or vetted path for a data: URL, file id, local path or https URL."""
        ref = reference.strip()
        if ref[:5].lower() == "data:":
            return ResolvedMedia(decode_data_url(ref, self.settings.max_media_bytes), "data: URL")
        if FILE_ID_RE.match(ref):
            return ResolvedMedia(self.files.path(ref), ref)
        scheme = urlsplit(ref).scheme.lower()
        if scheme in ("http", "https"):
            data = await fetch_remote(
                ref, self.settings, resolver=self.resolver, transport=self.transport
            )
            return ResolvedMedia(data, urlsplit(ref).path.rsplit("/", 1)[-1] or "remote media")
        if scheme in ("", "file") or len(scheme) == 1:  # plain path (len 1: a Windows drive)
            path = resolve_local_path(ref, self.settings.allowed_local_media_path)
            if path.stat().st_size > self.settings.max_media_bytes:
                msg = f"media is larger than the {self.settings.max_media_bytes} byte limit"
                raise APIError(413, msg, code="media_too_large")
            return ResolvedMedia(path, Path(ref).name)
        raise APIError(400, f"unsupported media URL scheme {scheme!r}", code="bad_url_scheme")

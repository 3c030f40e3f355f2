"""What a server allows: one frozen object, built from the CLI flags, read by every layer.

Defaults are safe to expose: no remote fetching, no server paths, bounded bodies, media and queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """Caps and allow-lists of the HTTP API (and the web demo's upload cap)."""

    model_id: str = "videochat"
    api_key: str | None = None
    allowed_local_media_path: Path | None = None  # None: no server paths at all
    allowed_media_domains: tuple[str, ...] = ()  # empty: no remote fetching; "*.a.com" = subdomains
    max_queue: int = 8  # requests waiting for the model (the running one not counted)
    max_body_bytes: int = 128 * MIB  # whole HTTP request body (base64 media inflates by 4/3)
    max_media_bytes: int = 64 * MIB  # one media item after decoding / download
    max_media_items: int = 8  # media parts per request
    max_request_media_bytes: int = 128 * MIB  # all media of one request, held until it runs
    max_pixels: int = 4096 * 4096  # per frame or image
    max_duration_s: float = 3 * 3600.0
    max_num_frames: int = 64  # frames sampled per video (the original demo's slider max)
    default_num_frames: int = 8
    max_new_tokens: int = 2048  # cap on max_tokens
    default_max_new_tokens: int = 1000  # the original demo's default
    max_messages: int = 64
    max_files: int = 64  # files kept by POST /v1/files (oldest dropped)
    fetch_timeout_s: float = 20.0
    max_redirects: int = 3
    upload_dir: Path | None = None  # where uploaded files live; None: a private temp dir

    def media_limits(self):
        """The media pipeline's caps for one item (imported lazily: torch-free import here)."""
        from videochat.media import MediaLimits

        return MediaLimits(
            max_bytes=self.max_media_bytes,
            max_pixels=self.max_pixels,
            max_duration_s=self.max_duration_s,
            max_sampled_frames=self.max_num_frames,
        )


def parse_domains(text: str | None) -> tuple[str, ...]:
    """`a.com, *.b.org` -> ("a.com", "*.b.org"), lower-cased; empty entries dropped."""
    if not text:
        return ()
    return tuple(d.strip().lower().rstrip(".") for d in text.split(",") if d.strip())

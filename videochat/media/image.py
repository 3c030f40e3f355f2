"""Still images with Pillow: size checked from the header before decoding, any mode made RGB."""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from videochat.media.clip import ImageClip
from videochat.media.errors import CorruptMediaError, MediaTooLargeError, UnsupportedMediaError
from videochat.media.limits import MediaLimits
from videochat.media.sample import check_size
from videochat.media.source import OpenedSource, Source, open_source
from videochat.media.transform import image_view, normalize

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ANIMATED_FORMATS = ("GIF", "PNG", "WEBP")  # multi-frame files of these formats are animations


def open_image(opened: OpenedSource, limits: MediaLimits) -> Image.Image:
    """Read the header only; refuse decompression bombs and images over ``limits.max_pixels``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(opened.rewind())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaTooLargeError(
            opened.name, "image declares too many pixels (refused before decoding)"
        ) from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedMediaError(opened.name, "not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptMediaError(opened.name, f"image header is damaged ({exc})") from exc
    width, height = image.size
    limits.check_pixels(opened.name, width, height, what="image")
    return image


def is_animation(image: Image.Image) -> bool:
    """Animated GIF/PNG/WebP (multi-frame MPO/TIFF files are still photos: first frame used)."""
    animated = bool(getattr(image, "is_animated", False)) and getattr(image, "n_frames", 1) > 1
    return animated and image.format in _ANIMATED_FORMATS


def image_header(opened: OpenedSource, limits: MediaLimits) -> Image.Image | None:
    """The Pillow header (size already checked), or None when Pillow does not know the format."""
    try:
        return open_image(opened, limits)
    except UnsupportedMediaError:
        return None


def decode_rgb(image: Image.Image, name: str) -> Image.Image:
    """Decode fully and return upright RGB: EXIF orientation applied, alpha over white, 16-bit scaled."""
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptMediaError(
            name, f"{image.format or 'image'} data is truncated or damaged ({exc})"
        ) from exc


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _SIXTEEN_BIT_MODES:  # 16-bit greyscale: scale to 8 bits, don't clip
        values = np.asarray(image, dtype=np.float64)
        scaled = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, mode="L").convert("RGB")
    if image.mode == "F":
        values = np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return Image.fromarray(values, mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # CMYK (incl. Adobe-inverted JPEG), YCbCr, L, 1, P, ...


def image_clip(opened: OpenedSource, size: int, limits: MediaLimits) -> ImageClip:
    """An opened still image as the model sees it."""
    header = open_image(opened, limits)
    width, height = header.size
    rgb = decode_rgb(header, opened.name)
    pixels = normalize([image_view(rgb, size)])  # (1, 3, size, size)
    return ImageClip(pixels, width, height, opened.name, header.format or "unknown")


def load_image(source: Source, size: int = 224, limits: MediaLimits | None = None) -> ImageClip:
    """Load a still image (JPEG, PNG, WebP, ...) for the model: size x size, CLIP-normalised."""
    limits = limits or MediaLimits()
    check_size(size)
    with open_source(source, limits) as opened:
        return image_clip(opened, size, limits)

"""Bad input: each gets a typed MediaError naming the file and saying what is wrong, never a hang."""

import io
import os
import random
import struct
import zlib

import pytest
from _media_helpers import write_audio, write_video
from PIL import Image

from videochat.errors import VideoChatError
from videochat.media import (
    CorruptMediaError,
    DecodeTimeoutError,
    MediaError,
    MediaLimits,
    MediaNotFoundError,
    MediaTooLargeError,
    UnsupportedMediaError,
    load_image,
    load_media,
    load_video,
)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    mp4 = write_video(folder / "ok.mp4", num_frames=40)  # moov atom at the end (not faststart)
    webm = write_video(folder / "ok.webm", num_frames=40, codec="libvpx-vp9")
    data, rng = mp4.read_bytes(), random.Random(0)
    files = {"ok.mp4": mp4, "ok.webm": webm}

    def put(name, content):
        path = folder / name
        path.write_bytes(content)
        files[name] = path

    put("empty.mp4", b"")
    put("text.mp4", b"this is a plain text file, not a video\n" * 40)
    put("random.mp4", bytes(rng.randrange(256) for _ in range(4096)))
    put("truncated.mp4", data[: len(data) // 2])
    put("truncated.webm", webm.read_bytes()[: len(webm.read_bytes()) // 2])
    mdat, moov = data.find(b"mdat"), data.find(b"moov")
    garbage = bytearray(data)
    garbage[mdat + 20 : moov - 8] = bytes(rng.randrange(256) for _ in range(moov - 8 - mdat - 20))
    put("garbage_frames.mp4", bytes(garbage))
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 20, 30)).save(jpeg, "JPEG")
    start_of_scan = jpeg.getvalue().find(b"\xff\xda")
    put("header_only.jpg", jpeg.getvalue()[: start_of_scan + 14])
    put("bomb.png", _png_header_only(40000, 40000))
    files["audio.m4a"] = write_audio(folder / "audio.m4a")
    files["cover.m4a"] = write_audio(folder / "cover.m4a", cover=True)
    files["folder"] = folder
    return files


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR declaring width x height, and no pixel data at all."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


VIDEO, IMAGE = (load_media, load_video), (load_media, load_image)
CASES = [
    ("missing.mp4", MediaNotFoundError, "file not found", VIDEO),
    ("folder", MediaNotFoundError, "is a directory", VIDEO),
    ("empty.mp4", CorruptMediaError, "file is empty (0 bytes)", VIDEO),
    ("text.mp4", UnsupportedMediaError, "not a recognised video or image format", VIDEO),
    ("random.mp4", UnsupportedMediaError, "not a recognised video or image format", VIDEO),
    ("truncated.mp4", CorruptMediaError, "MP4/MOV data is truncated or damaged", VIDEO),
    ("audio.m4a", UnsupportedMediaError, "has no video stream (audio only)", VIDEO),
    ("cover.m4a", UnsupportedMediaError, "(audio only, with a cover picture)", VIDEO),
    ("garbage_frames.mp4", CorruptMediaError, "no frame of the h264 video could be decoded", VIDEO),
    ("header_only.jpg", CorruptMediaError, "JPEG data is truncated or damaged", IMAGE),
    ("bomb.png", MediaTooLargeError, "declares too many pixels (refused before decoding)", IMAGE),
]
PARAMS = [(name, err, words, fn) for name, err, words, fns in CASES for fn in fns]


@pytest.mark.parametrize(
    ("name", "error", "words", "loader"),
    PARAMS,
    ids=[f"{p[3].__name__}-{p[0]}" for p in PARAMS],
)
def test_bad_files_give_typed_plain_errors(media, name, error, words, loader):
    path = media.get(name, media["folder"] / name)
    with pytest.raises(error) as caught:
        loader(path)
    exc = caught.value
    assert isinstance(exc, MediaError) and isinstance(exc, VideoChatError)
    assert exc.source_name == str(path) and words in exc.reason
    assert str(exc) == f"{path}: {exc.reason}"
    assert "avcodec" not in str(exc) and "Errno" not in str(exc)  # no FFmpeg internals


def test_still_image_is_not_a_video_and_video_is_not_an_image(media, tmp_path):
    png = tmp_path / "still.png"
    Image.new("RGB", (8, 8)).save(png)
    with pytest.raises(UnsupportedMediaError, match="is a still PNG image, not a video"):
        load_video(png)
    with pytest.raises(UnsupportedMediaError, match="not a recognised image format"):
        load_image(media["ok.mp4"])


def test_png_declaring_40000_squared_is_refused_from_its_header(media):
    # even with a huge pixel cap, Pillow's decompression-bomb guard refuses it before decoding
    with pytest.raises(MediaTooLargeError, match="too many pixels"):
        load_image(media["bomb.png"], limits=MediaLimits(max_pixels=10**10))
    # 9000x9000 is under Pillow's guard but over our default cap: refused from the header too
    with pytest.raises(MediaTooLargeError, match="image size 9000x9000 is over the limit"):
        load_media(_png_header_only(9000, 9000))
    with pytest.raises(MediaTooLargeError, match="image size 9000x9000 is over the limit"):
        load_video(_png_header_only(9000, 9000))


@pytest.mark.parametrize(
    ("limits", "kwargs", "words"),
    [
        (MediaLimits(max_bytes=1000), {}, "over the 1000 bytes limit"),
        (MediaLimits(max_pixels=1000), {}, "frame size 64x48 is over the limit of 1,000 pixels"),
        (MediaLimits(max_duration_s=1), {}, "video is 1.6 s long, over the 1 s limit"),
        (MediaLimits(max_frames=10), {}, "video has 40 frames, over the limit of 10"),
        (MediaLimits(), {"num_frames": 65}, "65 frames requested, over the limit of 64"),
        (MediaLimits(max_sampled_frames=4), {"sampling": "fps:10"}, "16 frames requested"),
    ],
)
def test_caps(media, limits, kwargs, words):
    with pytest.raises(MediaTooLargeError, match=words):
        load_video(media["ok.mp4"], limits=limits, **{"num_frames": -1, **kwargs})


def test_caps_on_webm_without_header_count(media):
    with pytest.raises(MediaTooLargeError, match="video has 40 frames, over the limit of 10"):
        load_media(media["ok.webm"], limits=MediaLimits(max_frames=10))


def test_decode_time_limit(media):
    with pytest.raises(DecodeTimeoutError, match=r"decoding took longer than the 0.001 s limit"):
        load_video(media["ok.mp4"], limits=MediaLimits(decode_timeout_s=0.001))


def test_truncated_streaming_file_plays_up_to_the_cut(media):
    # WebM has no up-front index: like a player, we use the frames before the cut, counted exactly
    clip = load_video(media["truncated.webm"], num_frames=4, size=16)
    assert 0 < clip.num_frames_total < 40 and clip.count_source == "scan"
    assert max(clip.indices) < clip.num_frames_total


def test_bytes_and_streams_report_their_name():
    with pytest.raises(CorruptMediaError, match="^<bytes>: file is empty"):
        load_media(b"")
    stream = io.BytesIO(os.urandom(100))
    with pytest.raises(UnsupportedMediaError, match="^<stream>: not a recognised"):
        load_media(stream)

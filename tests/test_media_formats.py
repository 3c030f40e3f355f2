"""Every container/codec and image kind we promise to read, seeking correctness and true timestamps."""

import io
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from _media_helpers import HEIGHT, WIDTH, frame_index, index_frame, sequential_frames, write_video
from PIL import Image

from videochat.media import ImageClip, VideoClip, load_image, load_media, load_video
from videochat.media import decode as decode_module
from videochat.media.sample import demo_indices, fps_indices
from videochat.media.transform import denormalize

VIDEO_FORMATS = {
    "h264.mp4": dict(codec="libx264"),
    "vp9.webm": dict(codec="libvpx-vp9"),
    "mpeg4.avi": dict(codec="mpeg4"),
    "h264.mkv": dict(codec="libx264"),
    "h264.mov": dict(codec="libx264"),
    "mjpeg.avi": dict(codec="mjpeg", pix_fmt="yuvj420p"),
    "hevc.mkv": dict(codec="libx265", options={"x265-params": "log-level=none"}),
    "anim.gif": dict(codec="gif", pix_fmt="rgb8", fps=10),
}
EXPECTED_CODEC = {"h264": "h264", "vp9": "vp9", "mpeg4": "mpeg4", "mjpeg": "mjpeg"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return {
        name: write_video(folder / name, num_frames=40, **kw) for name, kw in VIDEO_FORMATS.items()
    }


def _decoded_indices(clip: VideoClip) -> list[int]:
    return [frame_index(frame.numpy()) for frame in denormalize(clip.pixels)]


@pytest.mark.parametrize("name", sorted(VIDEO_FORMATS))
@pytest.mark.parametrize("strategy_max", [300, 0], ids=["sequential", "seek"])
def test_reads_each_format_by_both_strategies(videos, name, strategy_max, monkeypatch):
    monkeypatch.setattr(decode_module, "SEQUENTIAL_MAX_FRAMES", strategy_max)
    clip = load_video(videos[name], num_frames=8, size=32)
    fps = VIDEO_FORMATS[name].get("fps", 25)
    assert clip.pixels.shape == (8, 3, 32, 32)
    assert (clip.width, clip.height, clip.num_frames_total) == (WIDTH, HEIGHT, 40)
    assert clip.fps == pytest.approx(fps)
    assert clip.duration == pytest.approx(40 / fps, abs=1.5 / fps)
    assert clip.codec in (EXPECTED_CODEC.get(name.split(".")[0], name.split(".")[0]), "hevc", "gif")
    assert clip.indices == [2, 7, 12, 17, 22, 26, 31, 36]
    assert _decoded_indices(clip) == clip.indices  # the pixels are those frames
    assert clip.timestamps == pytest.approx([i / fps for i in clip.indices], abs=1e-6)


def test_seeked_frames_equal_sequentially_decoded_frames(tmp_path, monkeypatch):
    # 200 frames, keyframe every 25: targets sit mid-GOP, so a wrong seek would show
    path = write_video(tmp_path / "long.mp4", num_frames=200, gop=25)
    monkeypatch.setattr(decode_module, "SEQUENTIAL_MAX_FRAMES", 0)
    reference = sequential_frames(path)
    clip = load_video(path, num_frames=16, sampling="middle", size=48)
    views = denormalize(clip.pixels)
    assert len(set(clip.indices)) == 16
    for k, index in enumerate(clip.indices):
        # 64x48 at size 48: no resize, centre crop columns 8..55 of the very same decoded frame
        assert np.array_equal(views[k].numpy(), reference[index][:, 8:56])
        assert frame_index(views[k].numpy()) == index


def test_variable_frame_rate_uses_true_frame_times(tmp_path):
    pts = [0, 100, 150, 400, 450, 900, 1000, 1800, 1900, 2000]  # milliseconds, irregular
    path = write_video(
        tmp_path / "vfr.mkv", num_frames=10, fps=10, pts=pts, time_base=Fraction(1, 1000)
    )
    clip = load_video(path, num_frames=4, sampling="middle")
    assert clip.num_frames_total == 10 and clip.count_source == "scan"
    assert clip.indices == [0, 3, 5, 8]
    assert clip.timestamps == pytest.approx([pts[i] / 1000 for i in clip.indices])
    assert clip.message == "The video contains 4 frames sampled at 0.0, 0.4, 0.9, 1.9 seconds."
    assert _decoded_indices(clip) == clip.indices


def test_window_and_fps_policies_on_a_real_file(videos):
    clip = load_video(videos["h264.mp4"], num_frames=4, start=0.4, end=1.0, size=32)
    assert clip.indices == [10 + i for i in demo_indices(16, 4)]  # frames 10..25, demo rule
    assert _decoded_indices(clip) == clip.indices
    clip = load_video(videos["h264.mp4"], num_frames=-1, sampling="fps:5", size=32)
    assert clip.indices == fps_indices(40, 25.0, 5.0)  # 8 frames, one per 0.2 s
    assert _decoded_indices(clip) == clip.indices


def test_more_frames_than_the_video_repeats_frames(videos):
    clip = load_video(videos["h264.mp4"], num_frames=64, sampling="middle", size=16)
    assert clip.pixels.shape == (64, 3, 16, 16)
    assert clip.indices[-25:] == [39] * 25  # padded with the last index, as the original


def test_bytes_and_file_objects_work_like_paths(videos):
    data = videos["h264.mp4"].read_bytes()
    from_path = load_video(videos["h264.mp4"], size=32)
    from_bytes = load_video(data, size=32)
    with open(videos["h264.mp4"], "rb") as handle:
        from_file = load_video(handle, size=32)
    assert from_bytes.source_name == "<bytes>" and from_file.source_name.endswith("h264.mp4")
    assert torch.equal(from_path.pixels, from_bytes.pixels)
    assert torch.equal(from_path.pixels, from_file.pixels)


def _rgb_image(mode_size=(60, 40)) -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 256, (mode_size[1], mode_size[0], 3), np.uint8))


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def test_jpeg_png_webp_images():
    base = _rgb_image()
    for fmt, kw in [("JPEG", {"quality": 95}), ("PNG", {}), ("WEBP", {"lossless": True})]:
        clip = load_image(_encode(base, fmt, **kw), size=32)
        assert isinstance(clip, ImageClip) and clip.format == fmt
        assert clip.pixels.shape == (1, 3, 32, 32) and (clip.width, clip.height) == (60, 40)
    lossless = load_image(_encode(base, "PNG"), size=32).pixels
    webp = load_image(_encode(base, "WEBP", lossless=True), size=32).pixels
    assert torch.equal(lossless, webp)


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (40, 30), (0, 255, 255, 0))  # pure red in CMYK
    view = denormalize(load_image(_encode(cmyk, "JPEG", quality=100), size=16).pixels)[0]
    red, green, blue = view.float().mean(dim=(0, 1)).tolist()
    assert red > 200 and green < 40 and blue < 40


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    clip = load_image(_encode(image, "JPEG", quality=100, exif=exif), size=16)
    assert (clip.width, clip.height) == (40, 20)  # stored size reported
    view = denormalize(clip.pixels)[0].float()
    assert view[:4, :, 2].mean() > 200  # after rotating 90 CW, the blue half is on top
    assert view[-4:, :, 0].mean() > 200


def test_rgba_16bit_and_grey_pngs():
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))  # fully transparent -> white
    assert denormalize(load_image(_encode(rgba, "PNG"), size=8).pixels).min() == 255
    grey16 = Image.fromarray(np.full((20, 20), 32896, np.uint16))  # 32896 / 257 = 128
    data = _encode(grey16, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    assert torch.all(denormalize(load_image(data, size=8).pixels) == 128)
    grey = Image.fromarray(np.full((20, 20), 77, np.uint8), mode="L")
    assert torch.all(denormalize(load_image(_encode(grey, "PNG"), size=8).pixels) == 77)


def test_load_media_sniffs_content(videos, tmp_path):
    assert isinstance(load_media(_encode(_rgb_image(), "PNG"), size=16), ImageClip)
    still_gif = tmp_path / "still.gif"
    _rgb_image().save(still_gif)
    assert isinstance(load_media(still_gif, size=16), ImageClip)
    animated = load_media(videos["anim.gif"], size=16)
    assert isinstance(animated, VideoClip) and animated.num_frames_total == 40
    video = load_media(videos["vp9.webm"], num_frames=4, size=16)
    assert isinstance(video, VideoClip) and video.codec == "vp9"
    renamed = tmp_path / "actually_png.mp4"  # the content decides, not the name
    renamed.write_bytes(_encode(_rgb_image(), "PNG"))
    assert isinstance(load_media(renamed, size=16), ImageClip)


def _count_decoded(monkeypatch) -> list[int]:
    counter = [0]
    original = decode_module._decoded

    def counting(container, stream, max_errors=50):
        for frame in original(container, stream, max_errors):
            counter[0] += 1
            yield frame

    monkeypatch.setattr(decode_module, "_decoded", counting)
    return counter


def test_only_the_needed_gops_are_decoded(tmp_path, monkeypatch):
    path = write_video(tmp_path / "gop.mp4", num_frames=250, gop=20)
    monkeypatch.setattr(decode_module, "SEQUENTIAL_MAX_FRAMES", 0)
    decoded = _count_decoded(monkeypatch)
    clip = load_video(path, num_frames=4, size=16)
    assert _decoded_indices(clip) == clip.indices == demo_indices(250, 4)
    assert decoded[0] <= 4 * 20  # at most one GOP per sampled frame, never the whole file


@pytest.mark.parametrize("strategy_max", [300, 0], ids=["sequential", "seek"])
def test_wrong_header_count_is_corrected(videos, monkeypatch, strategy_max):
    import videochat.media.video as video_module

    real_describe = video_module.describe

    def lying_describe(*args):
        info = real_describe(*args)
        info.num_frames_total = 90  # the file really has 40 frames
        return info

    monkeypatch.setattr(video_module, "describe", lying_describe)
    monkeypatch.setattr(decode_module, "SEQUENTIAL_MAX_FRAMES", strategy_max)
    clip = load_video(videos["h264.mp4"], num_frames=8, size=16)
    assert clip.num_frames_total == 40 and clip.count_source == "scan"
    assert clip.indices == [2, 7, 12, 17, 22, 26, 31, 36]  # resampled over the real 40 frames
    assert _decoded_indices(clip) == clip.indices


def test_long_stream_without_header_count_uses_an_estimate(videos, monkeypatch):
    import videochat.media.probe as probe_module

    monkeypatch.setattr(probe_module, "SCAN_MAX_FRAMES", 10)  # treat the WebM as "long"
    clip = load_video(videos["vp9.webm"], num_frames=4, size=16)
    assert clip.count_source == "estimate" and clip.num_frames_total == 40  # 1.6 s x 25 fps
    assert _decoded_indices(clip) == clip.indices


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_animated_webp_and_apng_are_videos(tmp_path, fmt):
    frames = [Image.fromarray(index_frame(i)) for i in range(12)]
    durations = [100] * 6 + [300] * 6  # the second half is slower: true times, not i / fps
    path = tmp_path / f"anim.{fmt.lower()}"
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:], duration=durations, **kwargs)
    clip = load_media(path, num_frames=4, size=32)
    assert isinstance(clip, VideoClip) and clip.num_frames_total == 12
    assert clip.duration == pytest.approx(2.4, abs=0.1)  # APNG: last frame's length estimated
    assert _decoded_indices(clip) == clip.indices
    starts = np.cumsum([0, *durations])[:12] / 1000
    assert clip.timestamps == pytest.approx([starts[i] for i in clip.indices], abs=1e-3)
    assert torch.equal(load_video(path, num_frames=4, size=32).pixels, clip.pixels)


def test_raw_h264_stream_without_container(tmp_path, monkeypatch):
    path = write_video(tmp_path / "raw.h264", num_frames=60, container_format="h264")
    for strategy_max in (300, 0):  # seeking a raw stream falls back to one sequential pass
        monkeypatch.setattr(decode_module, "SEQUENTIAL_MAX_FRAMES", strategy_max)
        clip = load_video(path, num_frames=4, size=32)
        assert clip.num_frames_total == 60 and clip.count_source == "scan"
        assert _decoded_indices(clip) == clip.indices == demo_indices(60, 4)


def test_phone_rotation_is_applied(tmp_path):
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.set_display_rotation(90)  # stored landscape, shown portrait (counter-clockwise)
        for i in range(10):
            frame = index_frame(i)
            frame[:16, :16] = 255  # a white top-left corner
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    clip = load_video(path, num_frames=2, size=48)
    assert (clip.width, clip.height) == (HEIGHT, WIDTH)
    view = denormalize(clip.pixels)[0].float()  # 48x64 portrait -> crop rows 8..56
    # rotating 90 degrees counter-clockwise moves the top-left corner to the bottom-left
    assert view[-6:, :6].mean() > 240 and view[:6, :6].mean() < 200


def test_split_contiguous_gives_near_equal_ordered_runs():
    split = decode_module.split_contiguous
    assert split([1, 2, 3, 4, 5, 6, 7, 8], 2) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert split([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4, 5]]
    assert split([1, 2, 3], 4) == [[1], [2], [3]]
    assert split([7], 1) == [[7]]


@pytest.mark.parametrize("kind", ["path", "bytes", "file object"])
@pytest.mark.parametrize("readers", [2, 4])
def test_parallel_seek_readers_give_the_frames_of_one_reader(tmp_path, monkeypatch, kind, readers):
    path = write_video(tmp_path / "long.mp4", num_frames=200, gop=25)
    monkeypatch.setattr(decode_module, "SEQUENTIAL_MAX_FRAMES", 0)
    monkeypatch.setattr(decode_module, "PARALLEL_READERS", 1)
    single = load_video(path, num_frames=8, sampling="middle", size=48)
    monkeypatch.setattr(decode_module, "PARALLEL_READERS", readers)
    started = []
    original = decode_module._SeekReader.read

    def counting(self, wanted):
        started.append(list(wanted))
        return original(self, wanted)

    monkeypatch.setattr(decode_module._SeekReader, "read", counting)
    with open(path, "rb") as handle:
        source = {"path": path, "bytes": path.read_bytes(), "file object": handle}[kind]
        clip = load_video(source, num_frames=8, sampling="middle", size=48)
    assert torch.equal(clip.pixels, single.pixels)
    assert (clip.indices, clip.timestamps) == (single.indices, single.timestamps)
    # a caller's file object has one read position, so it keeps one reader
    expected = 1 if kind == "file object" else readers
    assert len(started) == expected
    assert sorted(i for group in started for i in group) == sorted(set(single.indices))


def test_extra_streams_close_with_their_source(tmp_path):
    from videochat.media.limits import MediaLimits
    from videochat.media.source import open_source

    path = write_video(tmp_path / "v.mp4", num_frames=10)
    opened = open_source(path, MediaLimits())
    extra = opened.another_stream()
    assert extra is not opened.stream and extra.read(4) == path.read_bytes()[:4]
    opened.close()
    assert extra.closed and opened.stream.closed
    with (
        open(path, "rb") as handle,
        open_source(handle, MediaLimits()) as borrowed,
        pytest.raises(ValueError, match="cannot be opened twice"),
    ):
        borrowed.another_stream()

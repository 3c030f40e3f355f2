"""Gradio web demo: upload a video or an image, see the frames the model sees, chat with streaming.

Sessions live server-side (a bounded table keyed by a random id kept in gr.State), so Gradio never
copies a model-holding object. Generation runs one request at a time (queue concurrency 1).
Nothing outside the app's own uploads is served (`allowed_paths` is empty).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("videochat.web")
MIB = 1024 * 1024


@dataclass(frozen=True)
class WebSettings:
    """Knobs of the demo (the original demo's defaults)."""

    max_upload_mb: float = 200.0
    max_frames: int = 64
    max_new_tokens: int = 1000
    top_p: float = 0.9
    max_sessions: int = 64
    seed: int | None = None  # fixed sampling seed (tests, reproducible demos)


class SessionTable:
    """Thread-safe LRU of live chat sessions."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, session: Any) -> str:
        key = secrets.token_hex(16)
        with self._lock:
            self._items[key] = session
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return key

    def get(self, key: str | None) -> Any:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def drop(self, key: str | None) -> None:
        with self._lock:
            self._items.pop(key or "", None)


def gallery_items(clip: Any) -> list[tuple[Any, str]]:
    """The frames the model sees (un-normalised), captioned with their time in the video."""
    from PIL import Image

    from videochat.media.transform import denormalize

    frames = denormalize(clip.pixels).numpy()  # (T, H, W, 3) uint8
    times = getattr(clip, "timestamps", None) or [None] * len(frames)
    items = []
    for frame, t in zip(frames, times, strict=True):
        caption = f"{t:.1f} s" if t is not None else "image"
        items.append((Image.fromarray(frame), caption))
    return items


class WebDemo:
    """The demo's behaviour, independent of the Gradio layout (testable without a browser)."""

    def __init__(self, model: Any, settings: WebSettings) -> None:
        from videochat.chat import VisualCache

        self.model = model
        self.settings = settings
        self.sessions = SessionTable(settings.max_sessions)
        self.cache = VisualCache()

    def start(self, path: str | None, kind: str, num_frames: int) -> tuple[str | None, list, str]:
        """New session with one media item -> (session key, gallery, status message)."""
        from videochat.chat import ChatSession
        from videochat.media import MediaError

        if not path:
            return None, [], f"Upload {'a video' if kind == 'video' else 'an image'} first."
        name = Path(path).name
        limit = int(self.settings.max_upload_mb * MIB)
        if os.path.getsize(path) > limit:
            return None, [], f"{name}: file is over the {self.settings.max_upload_mb:g} MB limit."
        num_frames = max(1, min(int(num_frames), self.settings.max_frames))
        session = ChatSession(self.model, cache=self.cache)
        try:
            if kind == "video":
                clip = session.add_video(path, num_frames=num_frames)
            else:
                clip = session.add_image(path)
        except MediaError as exc:
            return None, [], f"{name}: {exc.reason}"
        status = getattr(clip, "message", "") or "Image received."
        return self.sessions.put(session), gallery_items(clip), f"Ready. {status}"

    def ask(
        self, key: str | None, question: str, history: list, beams: int, temperature: float
    ) -> Iterator[tuple[list, str]]:
        """Stream the answer into the chat history -> (history, status) updates."""
        from videochat.errors import VideoChatError

        session = self.sessions.get(key)
        if session is None:
            yield history, "Upload a video or an image and press Start chat first."
            return
        if not question.strip():
            yield history, "Type a question first."
            return
        history = [
            *history,
            {"role": "user", "content": question},
            {"role": "assistant", "content": ""},
        ]
        yield history, "Answering…"
        options = {
            "do_sample": True,
            "num_beams": int(beams),
            "temperature": float(temperature),
            "top_p": self.settings.top_p,
            "max_new_tokens": self.settings.max_new_tokens,
            "seed": self.settings.seed,
        }
        try:
            for piece in session.ask(question, stream=True, **options):
                answer = {"role": "assistant", "content": history[-1]["content"] + piece}
                history = [*history[:-1], answer]  # a new list per update
                yield history, "Answering…"
        except VideoChatError as exc:
            yield history[:-2], str(exc)
            return
        yield history, "Done."

    def restart(self, key: str | None) -> tuple[None, list, list, str]:
        self.sessions.drop(key)
        return None, [], [], "Upload a video or an image to start."


def build_demo(model: Any, settings: WebSettings | None = None):
    """The Gradio Blocks app (not launched)."""
    import gradio as gr

    settings = settings or WebSettings()
    demo_logic = WebDemo(model, settings)
    with gr.Blocks(title="VideoChat", analytics_enabled=False) as demo:
        gr.Markdown("# VideoChat\nUpload a video or an image, press **Start chat**, then ask.")
        key = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tab("Video"):
                    video = gr.Video(sources=["upload"], format=None, label="Video")
                    start_video = gr.Button("Start chat", variant="primary", elem_id="start-video")
                with gr.Tab("Image"):
                    image = gr.Image(sources=["upload"], type="filepath", label="Image")
                    start_image = gr.Button("Start chat", variant="primary", elem_id="start-image")
                frames = gr.Slider(8, settings.max_frames, value=8, step=1, label="Frames")
                beams = gr.Slider(1, 10, value=1, step=1, label="Beams")
                temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.1, label="Temperature")
                restart = gr.Button("Restart", elem_id="restart")
            with gr.Column(scale=2):
                status = gr.Markdown("Upload a video or an image to start.", elem_id="status")
                gallery = gr.Gallery(label="Frames the model sees", columns=8, height=160)
                chatbot = gr.Chatbot(label="VideoChat", elem_id="chatbot", height=420)
                question = gr.Textbox(
                    label="Question", placeholder="Ask about the media…", elem_id="question"
                )
                send = gr.Button("Send", elem_id="send")

        def start_fn(kind: str):
            def run(path, n):
                session_key, items, message = demo_logic.start(path, kind, n)
                return session_key, items, [], message

            return run

        outputs = [key, gallery, chatbot, status]
        start_video.click(start_fn("video"), [video, frames], outputs)
        start_image.click(start_fn("image"), [image, frames], outputs)
        ask_inputs = [key, question, chatbot, beams, temperature]
        send.click(demo_logic.ask, ask_inputs, [chatbot, status]).then(lambda: "", None, question)
        question.submit(demo_logic.ask, ask_inputs, [chatbot, status]).then(
            lambda: "", None, question
        )
        restart.click(demo_logic.restart, [key], outputs).then(
            lambda: (None, None), None, [video, image]
        )
    demo.queue(default_concurrency_limit=1, max_size=32)
    return demo


def launch(demo: Any, host: str, port: int, settings: WebSettings, block: bool = True) -> Any:
    """Launch with safe file serving: no extra allowed paths (env ignored), an upload size cap."""
    if os.environ.pop("GRADIO_ALLOWED_PATHS", None):
        log.warning("ignoring GRADIO_ALLOWED_PATHS: the demo serves only its own uploads")
    return demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        allowed_paths=None,
        max_file_size=int(settings.max_upload_mb * MIB),
        ssr_mode=False,
        show_error=False,
        prevent_thread_lock=not block,
        quiet=not block,
    )

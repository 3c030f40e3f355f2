"""lmms-eval's model interface (``lmms``) over a VideoChat chat session, without importing lmms-eval.

``videochat.eval.lmms.VideoChatLMM`` adds the lmms-eval base class to this; the logic lives here so it
is tested without lmms-eval installed. lmms-eval hands ``generate_until`` requests whose ``args`` are
``(context, gen_kwargs, doc_to_visual, doc_id, task, split)``; ``doc_to_visual(doc)`` gives a list of
video paths, frame-folder paths or PIL images. Each request is a fresh conversation: the visuals
(videos sampled with ``sampling``, ``num_frames`` frames; several PIL images played as one clip at
``frames_fps``), then ``context`` as the question, greedy unless the task asks for sampling.
``loglikelihood`` requests (``(context, target, doc_to_visual, doc_id, task, split)``, the target a
string or ``doc_to_target``) score the target as the answer (``ChatSession.score_replies``): its
total log-probability, as lm-eval-harness defines it, and whether greedy decoding writes it.
Multi-round generation is not supported (a clear error).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from videochat.errors import VideoChatError
from videochat.eval.bench import DEFAULT_FRAME_FPS
from videochat.eval.frames import IMAGE_SUFFIXES, frame_folder_video, images_video


class NotSupportedError(VideoChatError):
    """lmms-eval asked for a request type this model adapter does not provide."""


def _generation(gen_kwargs: dict[str, Any]) -> dict[str, Any]:
    """lmms-eval generation kwargs -> ChatSession.ask kwargs (greedy when temperature is 0)."""
    temperature = float(gen_kwargs.get("temperature", 0) or 0)
    do_sample = bool(gen_kwargs.get("do_sample", False)) and temperature > 0
    out: dict[str, Any] = {
        "do_sample": do_sample,
        "num_beams": int(gen_kwargs.get("num_beams", 1) or 1),
        "max_new_tokens": int(gen_kwargs.get("max_new_tokens", 128)),
    }
    if do_sample:
        out["temperature"] = temperature
        if gen_kwargs.get("top_p") is not None:
            out["top_p"] = float(gen_kwargs["top_p"])
    return out


def _until(gen_kwargs: dict[str, Any]) -> list[str]:
    until = gen_kwargs.get("until") or []
    return [until] if isinstance(until, str) else [u for u in until if u]


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """Text before the first stop string (lmms-eval's ``until`` semantics)."""
    for stop in stops:
        text = text.split(stop, 1)[0]
    return text


class VideoChatLMMCore:
    """``generate_until`` / ``loglikelihood`` / ``generate_until_multi_round`` for lmms-eval."""

    is_simple = True

    def __init__(
        self,
        pretrained: str | None = None,
        device: str | None = None,
        num_frames: int = 16,
        sampling: str = "middle",
        system: str = "",
        frames_fps: float = DEFAULT_FRAME_FPS,
        batch_size: int | str = 1,
        session: Any = None,
        **unused: Any,
    ) -> None:
        super().__init__()
        self._rank, self._world_size = 0, 1
        self.task_dict: dict = getattr(self, "task_dict", {})
        unknown = {k: v for k, v in unused.items() if v is not None and k != "max_batch_size"}
        if unknown:
            raise VideoChatError(f"unknown videochat model_args: {', '.join(sorted(unknown))}")
        self.num_frames, self.sampling = int(num_frames), str(sampling)
        self.frames_fps = float(frames_fps)  # model_args arrive as strings or numbers
        self.batch_size = batch_size  # requests run one at a time; the value is accepted, not used
        if session is None:
            from videochat.chat import ChatSession
            from videochat.model import load_model

            session = ChatSession(load_model(pretrained, device=device), system=system)
        self.session = session

    def _add_visual(self, visual: Any) -> None:
        if isinstance(visual, str | Path):
            path = Path(visual)
            if path.is_dir():
                clip, count = frame_folder_video(path, self.num_frames, self.frames_fps)
                self.session.add_video(io.BytesIO(clip), num_frames=count, sampling="middle")
            elif path.suffix.lower() in IMAGE_SUFFIXES - {".gif"}:
                self.session.add_image(str(path))
            else:
                self.session.add_video(
                    str(path), num_frames=self.num_frames, sampling=self.sampling
                )
            return
        raise NotSupportedError(f"cannot show a {type(visual).__name__} to the model")

    def _add_visuals(self, visuals: Sequence[Any] | None) -> None:
        visuals = [v for v in (visuals or []) if v is not None]
        images = [v for v in visuals if hasattr(v, "convert") and hasattr(v, "size")]  # PIL
        if len(images) == 1:
            buffer = io.BytesIO()
            images[0].convert("RGB").save(buffer, format="PNG")
            self.session.add_image(io.BytesIO(buffer.getvalue()))
        elif images:  # many PIL frames: one clip, sampled like a video
            clip = images_video(images, self.frames_fps)
            self.session.add_video(io.BytesIO(clip), num_frames=self.num_frames, sampling="middle")
        image_ids = {id(image) for image in images}
        for visual in visuals:
            if id(visual) not in image_ids:
                self._add_visual(visual)

    def generate_until(self, requests: Sequence[Any]) -> list[str]:
        """One answer per request, cut at the request's ``until`` strings."""
        answers = []
        for request in requests:
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            gen_kwargs = dict(gen_kwargs or {})
            doc = self.task_dict[task][split][doc_id]
            self.session.reset()
            self._add_visuals(doc_to_visual(doc))
            stops = _until(gen_kwargs)
            generation = _generation(gen_kwargs) | ({"stop": stops} if stops else {})
            answer = self.session.ask(context, **generation)
            answers.append(cut_at_stops(answer, stops).strip())
        return answers

    def loglikelihood(self, requests: Sequence[Any]) -> list[tuple[float, bool]]:
        """(total log-probability, whether greedy decoding writes it) of each request's
        continuation as the answer to its context, as lmms-eval's multiple-choice tasks ask."""
        results = []
        for request in requests:
            context, target, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            continuation = target if isinstance(target, str) else target(doc)
            self.session.reset()
            self._add_visuals(doc_to_visual(doc))
            (score,) = self.session.score_replies(context, [continuation])
            results.append((score.logprob, score.greedy))
        return results

    def generate_until_multi_round(self, requests: Sequence[Any]) -> list[str]:
        raise NotSupportedError(
            "videochat does not provide multi-round lmms-eval generation; use single-round tasks"
        )

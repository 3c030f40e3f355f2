"""The lmms-eval adapter, driven with lightweight request objects shaped like lmms-eval's Instance."""

import abc
import importlib
import sys
import types
from types import SimpleNamespace

import pytest
from _eval_helpers import RGB, FakeSession, write_frames, write_video
from PIL import Image

from videochat.errors import VideoChatError
from videochat.eval.bench import BenchItem
from videochat.eval.lmms_core import NotSupportedError, VideoChatLMMCore
from videochat.eval.parse import parse_lmms_eval
from videochat.eval.protocols import LMMS_EVAL

CANDS = ("red", "green", "blue")


def _context(question="What colour is shown?"):
    item = BenchItem("t", 0, "v", None, "video", question, CANDS, "red")
    return LMMS_EVAL.question(item)  # the text lmms-eval's mvbench doc_to_text produces


def _request(doc_id, gen_kwargs=None, task="mvbench_colour"):
    visual = lambda doc: doc["visuals"]  # noqa: E731 - lmms-eval passes a doc_to_visual callable
    gen = {"until": ["\n"], "max_new_tokens": 16, "temperature": 0, "do_sample": False}
    return SimpleNamespace(args=(_context(), gen_kwargs or gen, visual, doc_id, task, "train"))


@pytest.fixture
def adapter(tmp_path):
    session = FakeSession(reply=lambda letter, c: f"({letter}) {c[ord(letter) - 65]}\nBecause...")
    model = VideoChatLMMCore(session=session, num_frames=4)
    docs = [
        {"visuals": [str(write_video(tmp_path / "g.mp4", ["green"] * 6))]},
        {"visuals": [str(write_frames(tmp_path / "frames", ["blue"] * 9))]},
        {"visuals": [Image.new("RGB", (16, 16), RGB["red"]) for _ in range(5)]},
        {"visuals": [Image.new("RGB", (16, 16), RGB["green"])]},
    ]
    model.task_dict = {"mvbench_colour": {"train": docs}}
    return model, session


def test_generate_until_answers_each_request(adapter):
    model, session = adapter
    answers = model.generate_until([_request(i) for i in range(4)])
    assert answers == ["(B) green", "(C) blue", "(A) red", "(B) green"]  # cut at "\n"
    assert [parse_lmms_eval(a, CANDS) for a in answers] == ["B", "C", "A", "B"]
    call = session.calls[0]
    assert call["text"] == _context() and call["stop"] == ["\n"]
    assert (call["do_sample"], call["num_beams"], call["max_new_tokens"]) == (False, 1, 16)
    assert session.last_add == {"image": True}  # one PIL image -> add_image


def test_generation_kwargs_mapping(adapter):
    model, session = adapter
    gen = {"until": "###", "max_new_tokens": 5, "temperature": 0.7, "top_p": 0.9, "do_sample": True}
    model.generate_until([_request(0, gen)])
    call = session.calls[-1]
    assert call["do_sample"] is True and call["temperature"] == 0.7 and call["top_p"] == 0.9
    assert call["stop"] == ["###"] and call["max_new_tokens"] == 5


def test_loglikelihood_scores_each_continuation_on_its_own_visuals(adapter):
    model, session = adapter
    visual = lambda doc: doc["visuals"]  # noqa: E731
    targets = ["green)", "red)", lambda doc: "red)", "red)"]  # a string or doc_to_target
    requests = [
        SimpleNamespace(args=(_context(), t, visual, i, "mvbench_colour", "train"))
        for i, t in enumerate(targets)
    ]
    # the fake scores 0 for a continuation naming the clip's colour, -1 otherwise
    assert model.loglikelihood(requests) == [
        (0.0, False),
        (-1.0, False),
        (0.0, False),
        (-1.0, False),
    ]
    assert session.calls[-1]["replies"] == ["red)"] and session.calls[-1]["text"] == _context()


def test_unsupported_requests_are_clear(adapter):
    model, _ = adapter
    with pytest.raises(NotSupportedError, match="multi-round"):
        model.generate_until_multi_round([_request(0)])
    with pytest.raises(VideoChatError, match="unknown videochat model_args: colour"):
        VideoChatLMMCore(session=FakeSession(), colour="red")


def test_lmms_module_needs_lmms_eval(monkeypatch):
    monkeypatch.setitem(sys.modules, "lmms_eval", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "videochat.eval.lmms", raising=False)
    with pytest.raises(ImportError, match="needs lmms-eval; install it"):
        importlib.import_module("videochat.eval.lmms")


def test_lmms_class_binds_to_the_lmms_base(monkeypatch, adapter):
    """A stand-in for lmms_eval.api.model with the real base's abstract methods."""

    class lmms(abc.ABC):  # noqa: N801 - lmms-eval's name
        def __init__(self):
            self._rank, self._world_size, self.task_dict = 0, 1, {}

        @property
        def rank(self):
            return self._rank

        @abc.abstractmethod
        def loglikelihood(self, requests): ...

        @abc.abstractmethod
        def generate_until(self, requests): ...

        @abc.abstractmethod
        def generate_until_multi_round(self, requests): ...

    api = types.ModuleType("lmms_eval.api")
    api.model = types.ModuleType("lmms_eval.api.model")
    api.model.lmms = lmms
    monkeypatch.setitem(sys.modules, "lmms_eval", types.ModuleType("lmms_eval"))
    monkeypatch.setitem(sys.modules, "lmms_eval.api", api)
    monkeypatch.setitem(sys.modules, "lmms_eval.api.model", api.model)
    monkeypatch.delitem(sys.modules, "videochat.eval.lmms", raising=False)
    module = importlib.import_module("videochat.eval.lmms")
    monkeypatch.delitem(sys.modules, "videochat.eval.lmms")
    model = module.VideoChatLMM(session=adapter[1], num_frames=4)  # all abstract methods provided
    assert isinstance(model, lmms) and model.rank == 0
    model.task_dict = adapter[0].task_dict
    assert model.generate_until([_request(0)]) == ["(B) green"]

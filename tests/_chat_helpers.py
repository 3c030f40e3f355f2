"""Shared pieces of the chat tests: fixture tokenizer/LLM, a tiny model directory, test videos."""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

FIXTURES = Path(__file__).parent / "fixtures" / "parity"


def fixture_tokenizer():
    """The fixtures' SentencePiece tokenizer, loaded the way the package loads it (pad = eos)."""
    from videochat.model.load import load_tokenizer

    return load_tokenizer(FIXTURES / "tokenizer")


def fixture_llm():
    """The fixtures' 2-layer LLaMA with stock transformers."""
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(str(FIXTURES / "llm" / "hf")).eval()


def chat_fixture() -> dict:
    return json.loads((FIXTURES / "prompts" / "chat.json").read_text())


def chat_tensors() -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURES / "prompts" / "chat.safetensors"))


def write_video(path: Path, num_frames: int = 12, fps: int = 4, size: int = 32, seed: int = 0):
    """A small H.264 MP4 with moving random content (different seeds → different bytes)."""
    from videochat.synth.encode import write_mp4

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    frames = (np.roll(base, 2 * i, axis=1) for i in range(num_frames))
    write_mp4(path, frames, fps, size, size)
    return path


def write_image(path: Path, size: int = 40, seed: int = 1) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size + 8, 3), dtype=np.uint8)).save(path)
    return path


@functools.lru_cache(maxsize=1)
def tiny_model_dir() -> Path:
    """A tiny random model directory (built once per test process; loading it is fast)."""
    from videochat.model.config import VideoChatConfig
    from videochat.model.load import build_model, save_model

    directory = Path(tempfile.mkdtemp(prefix="videochat-tiny-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    model = build_model(VideoChatConfig.preset("tiny"), fixture_tokenizer(), seed=0)
    return save_model(model, directory)


def tiny_model():
    """A fresh tiny model object (its own identity, so its own visual-cache entries)."""
    from videochat.model.load import load_model

    return load_model(tiny_model_dir(), device="cpu")

"""Shared pieces of the chat tests: fixture tokenizer/LLM, a tiny model directory, test videos."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from safetensors.torch import load_file

FIXTURES = Path(__file__).parent / "fixtures" / "parity"


def fixture_tokenizer():
    """The fixtures' SentencePiece tokenizer, loaded the way VideoChat loads it (pad = eos)."""
    from transformers import LlamaTokenizer

    tokenizer = LlamaTokenizer.from_pretrained(str(FIXTURES / "tokenizer"), use_fast=False)
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


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
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 2 * i, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_image(path: Path, size: int = 40, seed: int = 1) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size + 8, 3), dtype=np.uint8)).save(path)
    return path

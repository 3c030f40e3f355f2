"""Shared helpers for the model tests: fixture files and small models built from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

FIXTURES = Path(__file__).parent / "fixtures" / "parity"


def tensors(relative: str) -> dict[str, torch.Tensor]:
    """All tensors of one fixture safetensors file."""
    return load_file(str(FIXTURES / relative))


def fixture_json(relative: str) -> dict:
    return json.loads((FIXTURES / relative).read_text())


def make_llm_dir(directory: Path) -> Path:
    """A Hugging Face LLaMA directory with the fixture weights and the fixture tokenizer."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(FIXTURES / "llm" / "hf" / name, directory / name)
    shutil.copy(FIXTURES / "tokenizer" / "tokenizer.model", directory / "tokenizer.model")
    return directory


def tiny_fixture_config():
    """The `tiny` preset pointing at an LLM directory made from the fixtures (needs tmp dir)."""
    from videochat.model.config import VideoChatConfig

    return VideoChatConfig.preset("tiny")


def encode_model():
    """The tiny model with the full original-layout weights of `encode/weights.safetensors`."""
    from videochat.model.load import build_skeleton

    model = build_skeleton(tiny_fixture_config())
    model.load_original_state_dict(tensors("encode/weights.safetensors"))
    return model

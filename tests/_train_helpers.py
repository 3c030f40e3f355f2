"""Shared helpers for the training tests: fixture loaders and tiny media generators."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures" / "parity"
PROMPTS = FIXTURES / "prompts"


@lru_cache(maxsize=1)
def fixture_tokenizer():
    """The fixtures' tokenizer with pad = eos, as VideoChat calls it."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(FIXTURES / "tokenizer"))
    tok.pad_token = tok.eos_token
    return tok


@lru_cache(maxsize=1)
def fixture_llm():
    """The fixtures' tiny LLaMA, loaded with stock transformers."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(FIXTURES / "llm" / "hf")).eval()


def tiny_llama(vocab: int = 50, positions: int = 256):
    """A fresh 2-layer LLaMA (hidden 32, 4 heads) from seed 0, in training mode."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=positions,
    )
    return LlamaForCausalLM(config)


def load_cases(name: str) -> list[dict]:
    return json.loads((PROMPTS / f"{name}.json").read_text())["cases"]


def parse_conversation(text: str, start: str, end: str) -> dict:
    """Recover (system, msg, QA) from a fixture conversation so our builder can re-create it."""
    system, rest = text.split("###Human: " + start + end, 1)
    msg, rest = rest.split(" ###Human: ", 1)
    pairs = re.findall(r"(.*?) ###Assistant: (.*?) ###(?:Human: |$)", rest)
    return {"system": system, "msg": msg, "qa": pairs}


def write_video(path: Path, frames: int = 12, size: int = 32, fps: int = 6, seed: int = 0) -> Path:
    """A small H.264/MPEG-4 clip of moving colour blocks (PyAV)."""
    import av

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(3,), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for t in range(frames):
            img = np.zeros((size, size, 3), dtype=np.uint8)
            img[:] = base
            x = (t * 3) % (size - 8)
            img[8:16, x : x + 8] = 255 - base
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_image(path: Path, size: int = 32, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)).save(path)
    return path


def make_data(root: Path, videos: int = 4, images: int = 2, missing: int = 0) -> list[str]:
    """Tiny stage-2 data (videos + images + optionally missing files); returns recipe overrides."""
    root.mkdir(parents=True, exist_ok=True)
    vids, imgs = [], []
    for i in range(videos):
        write_video(root / f"v{i}.mp4", seed=i)
        vids.append({"video": f"v{i}.mp4", "QA": [{"q": "What moves?", "a": "A white block."}]})
    for i in range(missing):
        vids.append({"video": f"gone{i}.mp4", "QA": [{"q": "What moves?", "a": "Nothing."}]})
    for i in range(images):
        write_image(root / f"i{i}.png", seed=i)
        imgs.append({"image": f"i{i}.png", "QA": [{"q": "Describe it.", "a": "Coloured noise."}]})
    (root / "vid.json").write_text(json.dumps(vids))
    (root / "img.json").write_text(json.dumps(imgs))
    sources = [f"{{file: {root / 'vid.json'}, root: {root}}}"]
    if images:
        sources.append(f"{{file: {root / 'img.json'}, root: {root}}}")
    return [f"data=[{', '.join(sources)}]"]


def _rank_main(argv: list[str]) -> None:
    """Under torchrun: train a recipe, then each rank saves its own trainable params."""
    import os

    from safetensors.torch import save_file

    from videochat.train.loop import train
    from videochat.train.recipe import load_recipe

    recipe = load_recipe(argv[0], argv[1:])
    result = train(recipe)
    rank = int(os.environ.get("RANK", "0"))
    save_file(result.trainable, str(Path(recipe.output_dir) / f"rank{rank}.safetensors"))


def loss_and_grads(recipe, checkpointing: bool = False, samples: int = 2):
    """One TrainStep on the recipe's first `samples` entries: (loss, llama_proj's gradient,
    extra_query_tokens' gradient), with fixed dropout draws."""
    import torch

    from videochat.train.data import TrainDataset, collate, read_all
    from videochat.train.loop import TrainStep
    from videochat.train.setup import apply_freeze, build_model, enable_gradient_checkpointing

    model = build_model(recipe)
    apply_freeze(model, recipe.freeze)
    if checkpointing:
        enable_gradient_checkpointing(model)
        assert model.llm.is_activation_checkpointing and model.visual_encoder.gradient_checkpointing
    dataset = TrainDataset(read_all(recipe), recipe, model.tokenizer, model.image_size)
    batch = collate([dataset[(0, i)] for i in range(samples)])
    step = TrainStep(model, recipe).train()
    torch.manual_seed(7)  # same dropout draws in both runs
    loss = step(batch.pixels, batch.texts)
    loss.backward()
    return (
        loss.detach(),
        model.llama_proj.weight.grad.clone(),
        model.extra_query_tokens.grad.clone(),
    )


if __name__ == "__main__":
    import sys

    _rank_main(sys.argv[1:])

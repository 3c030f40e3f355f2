"""``videochat train RECIPE [key=value ...]``: stage-1 / stage-2 training from a recipe."""

from __future__ import annotations

import argparse
import logging
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from videochat.train.recipe import builtin_recipes  # torch-free: --help stays fast

    parser.add_argument(
        "recipe", help=f"a built-in recipe ({', '.join(builtin_recipes())}) or a YAML file"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="recipe overrides, e.g. optim.lr=2e-5 data_dir=/data resume=true export=out/model",
    )
    parser.epilog = (
        "Several processes: torchrun --nproc_per_node N -m videochat.train RECIPE [key=value ...]; "
        "several nodes: add --nnodes M --rdzv-backend c10d --rdzv-endpoint HOST:PORT."
    )


def run(args: argparse.Namespace) -> int:
    from videochat.train.loop import train
    from videochat.train.recipe import load_recipe

    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"[rank {rank}] %(levelname)s %(name)s: %(message)s",
    )
    recipe = load_recipe(args.recipe, args.overrides)
    result = train(recipe)
    if rank == 0:
        loss = "n/a" if result.last_loss is None else f"{result.last_loss:.4f}"
        print(
            f"trained {result.steps} steps, last loss {loss}, {result.bad_samples} bad samples; "
            f"checkpoints in {result.output_dir / 'checkpoints'}"
        )
        if result.export_dir is not None:
            print(f"model exported to {result.export_dir}")
    return 0

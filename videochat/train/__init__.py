"""Training: the original's stage-1 (captions) and stage-2 (instructions) recipes, one process to many nodes.

Run with ``videochat train RECIPE.yaml [key=value ...]`` or
``torchrun --nproc_per_node N -m videochat.train RECIPE.yaml [key=value ...]``.
"""

from videochat._lazy import lazy_exports

__all__ = ["train", "load_recipe"]
__getattr__ = lazy_exports(
    __name__, {"train": "videochat.train.loop", "load_recipe": "videochat.train.recipe"}
)

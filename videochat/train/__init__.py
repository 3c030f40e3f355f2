"""Training: the original's stage-1 (captions) and stage-2 (instructions) recipes, one process to many nodes.

Run with ``videochat train RECIPE.yaml [key=value ...]`` or
``torchrun --nproc_per_node N -m videochat.train RECIPE.yaml [key=value ...]``.
"""

"""The closed vocabulary of the synthetic world: colours, shapes, sizes and backgrounds.

Kept small and well separated on purpose: a small vision encoder at 112-224 px must tell every
colour and shape apart after H.264 compression, so colours are saturated and far apart in RGB,
and backgrounds are dark (far from every object colour) with only light texture.
"""

from __future__ import annotations

# name -> RGB; pairwise RGB distance >= 110, every one far from the dark backgrounds.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (245, 230, 40),
    "green": (40, 200, 60),
    "cyan": (40, 215, 235),
    "blue": (40, 80, 245),
    "purple": (170, 60, 230),
    "white": (245, 245, 245),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")

# Object radius (bounding circle) as a fraction of the arena side.
SIZES: dict[str, float] = {"small": 0.075, "large": 0.115}

# Backgrounds: name -> (base RGB, second RGB for gradients); all dark.
BACKGROUNDS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "black": ((12, 12, 14), (28, 28, 32)),
    "dark grey": ((38, 38, 42), (58, 58, 62)),
    "dark blue": ((14, 20, 52), (24, 34, 74)),
    "dark green": ((14, 40, 22), (26, 58, 34)),
    "dark brown": ((46, 30, 18), (64, 44, 28)),
}
BACKGROUND_NAMES: tuple[str, ...] = tuple(BACKGROUNDS)
TEXTURES: tuple[str, ...] = ("plain", "gradient", "grid", "noise")

DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
}

# Collision outcomes (cause and effect); "vanish_a"/"vanish_b": that object disappears on impact.
EFFECTS: tuple[str, ...] = ("bounce", "stop", "vanish_a", "vanish_b")

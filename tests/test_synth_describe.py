"""Open-ended descriptions: attributes from the ground truth and the score of a free answer."""

import numpy as np
import pytest

from videochat.synth.describe import (
    caption,
    description,
    description_precision,
    ground_truth_attributes,
    score_description,
)
from videochat.synth.plan import random_image_scene, random_video_scene
from videochat.synth.vocab import COLOUR_NAMES
from videochat.synth.world import Collision, Scene, SceneObject, simulate


def _scene() -> Scene:
    """A hand-made scene: a red circle hits a blue star and vanishes, a square turns green."""
    objs = [
        SceneObject(0, "circle", "red", "large", 20.0, (50.0, 112.0), (30.0, 0.0), "collide"),
        SceneObject(1, "star", "blue", "small", 14.0, (170.0, 112.0), (-30.0, 0.0), "collide"),
        SceneObject(
            2,
            "square",
            "yellow",
            "small",
            14.0,
            (40.0, 40.0),
            (0.0, 0.0),
            "static",
            recolour=(4.5, "green"),
        ),
    ]
    coll = Collision(time=1.0, a=0, b=1, effect="vanish_a")
    # each moves 30 px/s towards x=112 and touches it at 1.0 s (centre = 112 -/+ radius)
    objs[0].start = (112.0 - 20.0 - 30.0, 112.0)
    objs[1].start = (112.0 + 14.0 + 30.0, 112.0)
    return Scene("hand", 224, 224, 10, 60, "dark grey", "plain", objs, coll)


def test_attributes_of_a_known_scene():
    scene = _scene()
    attrs = ground_truth_attributes(scene)
    assert attrs == {
        "red",
        "blue",
        "yellow",
        "green",
        "circle",
        "star",
        "square",
        "changes colour",
        "collides",
        "disappears",
    }


def test_own_description_scores_one_and_partial_answers_score_the_fraction():
    scene = _scene()
    tl = simulate(scene)
    text = description(scene, tl)
    assert "At 1.0 seconds the red circle hits the blue star and the red circle disappears" in text
    assert "from yellow to green" in text
    assert score_description(text, scene) == 1.0
    partial = "A red circle and a blue star. The circle crashed into the star and vanished."
    # red, blue, circle, star, collides, disappears = 6 of 10
    assert score_description(partial, scene) == pytest.approx(0.6)
    assert score_description("Nothing to see here.", scene) == 0.0


def test_score_accepts_synonyms_and_spelling_variants():
    scene = _scene()
    text = (
        "Red circles, a blue star and a yellow square that turns green (its color changes); "
        "the circle collided with the star and disappeared."
    )
    assert score_description(text, scene) == 1.0
    assert "appears" not in ground_truth_attributes(scene)  # "disappeared" must not count as appear


def test_plural_crosses_count_as_the_cross():
    scene = _scene()
    scene.objects[1].shape = "cross"  # the blue star becomes a blue cross
    text = "Red circles, blue crosses and a yellow square."
    assert score_description(text, scene) == pytest.approx(6 / 10)  # + green, 2 events missing
    assert description_precision(text, scene) == 1.0


def test_precision_counts_the_colours_and_shapes_named_that_are_not_there():
    scene = _scene()  # red circle, blue star, yellow square turning green
    assert description_precision(description(scene, simulate(scene)), scene) == 1.0
    # red, circle ✓; white, cross ✗ (the background's "dark blue" is not an object's colour)
    text = "A red circle and a white cross on a dark blue background."
    assert description_precision(text, scene) == pytest.approx(0.5)
    # each mention counts: listing every colour and shape, 7 of the 13 words are there
    listing = "Circles, squares, triangles, stars and crosses in " + ", ".join(COLOUR_NAMES)
    assert description_precision(listing, scene) == pytest.approx(7 / 13)
    assert description_precision("Two Red Circles, a GREEN square, blue stars.", scene) == 1.0
    assert description_precision("Nothing to see here.", scene) == 1.0  # names nothing false


@pytest.mark.parametrize("seed", range(8))
def test_generated_descriptions_mention_every_attribute(seed):
    scene = random_video_scene(np.random.default_rng([3, seed]), "v")
    tl = simulate(scene)
    assert score_description(description(scene, tl), scene) == 1.0
    assert description_precision(description(scene, tl), scene) == 1.0
    assert 0 < score_description(caption(scene, tl), scene) <= 1.0
    image = random_image_scene(np.random.default_rng([4, seed]), "i")
    assert score_description(description(image, simulate(image)), image) == 1.0

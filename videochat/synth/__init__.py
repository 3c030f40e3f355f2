"""Procedural video world with ground truth, for training the embedded model and for tests.

Scenes of coloured shapes moving, bouncing, appearing, disappearing, changing colour and colliding
are planned from a seed (`plan`), simulated to per-frame ground truth (`world`), drawn (`render`),
encoded as H.264 MP4 / PNG (`encode`), and turned into captions, instruction data and an
MVBench-layout benchmark (`questions`, `describe`, `dataset`).
"""

from videochat.synth.dataset import write_dataset
from videochat.synth.describe import (
    caption,
    description,
    ground_truth_attributes,
    score_description,
)
from videochat.synth.plan import random_image_scene, random_video_scene
from videochat.synth.questions import TASKS, Question, image_questions, video_questions
from videochat.synth.world import Scene, Timeline, simulate

__all__ = [
    "TASKS",
    "Question",
    "Scene",
    "Timeline",
    "caption",
    "description",
    "ground_truth_attributes",
    "image_questions",
    "random_image_scene",
    "random_video_scene",
    "score_description",
    "simulate",
    "video_questions",
    "write_dataset",
]

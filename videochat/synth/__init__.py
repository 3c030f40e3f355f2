"""Procedural video world with ground truth: scenes, rendering, encoding, questions, datasets."""

"""Stage-1 instruction lines (our own wording of the original's prompt lists) and their loading.

Each line holds the media placeholder; the recipe's template (``###Human: {} ###Assistant: ``)
wraps every line. A recipe may instead name a text file with one prompt per line.
"""

from __future__ import annotations

from pathlib import Path

from videochat.train.recipe import PromptSpec, RecipeError

VIDEO_PROMPTS = [
    "<Video><VideoHere></Video> Describe this video in a few words.",
    "<Video><VideoHere></Video> Give a short description of the clip.",
    "<Video><VideoHere></Video> What does this footage show? Answer briefly.",
    "<Video><VideoHere></Video> Summarise what happens in the video.",
    "<Video><VideoHere></Video> Explain the clip in one clear sentence.",
    "<Video><VideoHere></Video> Write a brief caption for this video.",
    "<Video><VideoHere></Video> Tell me concisely what the video is about.",
    "<Video><VideoHere></Video> Sum up the main content of the clip.",
]

IMAGE_PROMPTS = [
    "<Image><ImageHere></Image> Describe this image in a few words.",
    "<Image><ImageHere></Image> Give a short description of the picture.",
    "<Image><ImageHere></Image> What does this photo show? Answer briefly.",
    "<Image><ImageHere></Image> Summarise the content of the image.",
    "<Image><ImageHere></Image> Explain the picture in one clear sentence.",
    "<Image><ImageHere></Image> Write a brief caption for this image.",
    "<Image><ImageHere></Image> Tell me concisely what the image is about.",
    "<Image><ImageHere></Image> Sum up the main content of the photo.",
]

_BUILTIN = {"builtin:video": VIDEO_PROMPTS, "builtin:image": IMAGE_PROMPTS}


def load_prompts(spec: PromptSpec, image: bool) -> list[str]:
    """Templated stage-1 prompts for videos or images ([] = captions without a prompt)."""
    source = spec.image_prompts if image else spec.video_prompts
    if not source:
        return []
    if source in _BUILTIN:
        lines = _BUILTIN[source]
    else:
        path = Path(source)
        if not path.is_file():
            raise RecipeError(
                f"prompt file {source} not found (or use builtin:video/builtin:image)"
            )
        lines = path.read_text().splitlines()
    placeholder = "<ImageHere>" if image else "<VideoHere>"
    for number, line in enumerate(lines, 1):
        if line.count(placeholder) != 1:
            raise RecipeError(f"prompt {source} line {number}: needs {placeholder} exactly once")
    return [spec.template.format(line) for line in lines]

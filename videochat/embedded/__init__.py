"""The embedded default model: a small VideoChat trained by this project on the synthetic world.

`python -m videochat.embedded --out DIR` rebuilds it end to end (data → tokenizer → stages 0/1/2 →
export → measurement); the committed result lives in `videochat/assets/default/`.
"""

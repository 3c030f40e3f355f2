"""A byte-level BPE tokenizer learned from the synthetic corpus, saved with the model.

Whitespace runs (newlines included) are normalised to one space: the training conversations join
turns with spaces where the chat prompt uses newlines, so both tokenise to the same ids. `###` and
the media tags are whole tokens (" ###" too, as the original tokenizer joins the space to it,
which keeps the per-piece token counts of the stage-2 label mask exact), so stop strings and the
prompt split never fall inside a merge.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL = ("<unk>", "<s>", "</s>")  # ids 0, 1, 2: LLaMA's unk / bos / eos ids
WHOLE = (" ###", "###", "<Video>", "</Video>", "<Image>", "</Image>")


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Learn merges on `texts`; the vocabulary ends below `vocab_size` if the corpus is small."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Replace(Regex(r"\s+"), " ")
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(WHOLE),
        min_frequency=2,
        special_tokens=list(SPECIAL),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok.add_tokens(list(WHOLE))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=SPECIAL[0],
        bos_token=SPECIAL[1],
        eos_token=SPECIAL[2],
        pad_token=SPECIAL[2],
    )

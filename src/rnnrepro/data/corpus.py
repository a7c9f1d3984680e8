"""The character corpus: read, checked, split, and batched."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch

MARKER = r"\*\*\* ?{} OF TH(?:IS|E) PROJECT GUTENBERG E(?:BOOK|Book)"


class CorpusError(ValueError):
    pass


def check_prompts(prompts, vocab, where):
    """Every prompt non-empty and made of characters of `vocab`, or a CorpusError naming it."""
    known = set(vocab)
    for prompt in prompts:
        if not prompt:
            raise CorpusError("a prompt must not be empty")
        missing = sorted(set(prompt) - known)
        if missing:
            raise CorpusError(f"prompt {prompt!r} has characters that are not in {where}: {missing}")


@dataclass
class Corpus:
    """A text file read as UTF-8 (byte-order mark kept), with a sorted vocabulary.

    Training keeps the whole file (as the original did, licence included) except the
    validation slice: the last `val_fraction` of the book itself, which ends at the
    Project Gutenberg END marker when the file has one.
    """

    text: str
    val_fraction: float = 0.05

    def __post_init__(self):
        if not self.text:
            raise CorpusError("the corpus is empty")
        if not 0 < self.val_fraction < 1:  # also NaN
            raise CorpusError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        self.vocab = sorted(set(self.text))
        self.index = {ch: i for i, ch in enumerate(self.vocab)}
        self.data = torch.tensor([self.index[ch] for ch in self.text], dtype=torch.long)
        start = re.search(MARKER.format("START"), self.text)
        end = re.search(MARKER.format("END"), self.text)
        self.book = (start.start() if start else 0, end.start() if end else len(self.text))
        book_len = self.book[1] - self.book[0]
        self.val = (self.book[1] - int(book_len * self.val_fraction), self.book[1])

    @classmethod
    def from_file(cls, path, val_fraction=0.05):
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            raise CorpusError(f"corpus {path}: no such file") from None
        except IsADirectoryError:
            raise CorpusError(f"corpus {path} is a folder: a UTF-8 text file is wanted") from None
        except OSError as err:
            raise CorpusError(f"corpus {path}: cannot be read ({err.strerror or err})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorpusError(f"{path} is not UTF-8: {err}") from None
        return cls(text, val_fraction)

    @property
    def sha256(self):
        if not hasattr(self, "_sha256"):
            self._sha256 = hashlib.sha256(self.text.encode("utf-8")).hexdigest()
        return self._sha256

    def encode(self, s):
        return torch.tensor([self.index[ch] for ch in s], dtype=torch.long)

    def decode(self, idx):
        return "".join(self.vocab[i] for i in idx)

    def stats(self):
        return {
            "characters": len(self.text),
            "distinct": len(self.vocab),
            "book_start": self.book[0],
            "book_end": self.book[1],
            "validation_start": self.val[0],
            "validation_end": self.val[1],
            "training_characters": len(self.text) - (self.val[1] - self.val[0]),
            "sha256": self.sha256,
        }

    def check_prompts(self, prompts):
        check_prompts(prompts, self.vocab, "the corpus")

    def check_length(self, seq_length):
        """Both sides of the validation slice must hold windows, and so must the slice."""
        need = seq_length + 1
        held = self.val[1] - self.val[0]
        if min(self.val[0], held) < need:
            raise CorpusError(
                f"corpus too short for seq_length {seq_length}: {len(self.text)} characters, "
                f"validation slice {self.val[0]}..{self.val[1]}: the slice (val_fraction "
                f"{self.val_fraction:g}) holds {held} characters and the text before it "
                f"{self.val[0]}, and each needs {need} (a longer corpus, or another val_fraction)")

    def window_starts(self, batch, seq_length, generator=None, device=None):
        """Uniform random starts of (seq_length + 1)-character windows outside the slice."""
        span = seq_length + 1
        before = self.val[0] - span + 1  # starts whose window ends before the slice
        after = max(len(self.text) - self.val[1] - span + 1, 0)
        u = torch.randint(before + after, (batch,), generator=generator, device=device)
        return torch.where(u < before, u, u - before + self.val[1])

    def batch(self, batch, seq_length, generator=None, device=None, data=None):
        """Random training windows: inputs (batch, seq_length) and next-character targets.

        `data` is the corpus already moved to `device` (pass it to avoid a copy per call).
        """
        data = self.data.to(device) if data is None else data
        starts = self.window_starts(batch, seq_length, generator, device)
        windows = data[starts.unsqueeze(1) + torch.arange(seq_length + 1, device=device)]
        return windows[:, :-1], windows[:, 1:]

    def validation(self, seq_length):
        """The validation slice cut into consecutive, non-overlapping windows."""
        val = self.data[self.val[0] : self.val[1]]
        count = (len(val) - 1) // seq_length
        x = val[: count * seq_length].view(count, seq_length)
        y = val[1 : count * seq_length + 1].view(count, seq_length)
        return x, y

"""Palindromes and the corpus are what SPEC §1 says they are."""

import pytest
import torch

from rnnrepro.data.corpus import Corpus, CorpusError
from rnnrepro.data.palindromes import palindrome_batch, palindrome_test_set, palindromes

CORPUS_SHA256 = "e6439bd511820742e842e21b75e89b394d3809eec82ca56b506c39ff39d4a7d6"


@pytest.mark.parametrize("length", [1, 2, 5, 6, 11, 20])
def test_every_generated_sequence_is_a_palindrome(length):
    seqs = palindromes(4096, length, torch.Generator().manual_seed(length))
    assert seqs.shape == (4096, length)
    assert torch.equal(seqs, seqs.flip(1))
    assert seqs.min() >= 0 and seqs.max() <= 9


def test_the_free_half_is_random_and_the_digits_uniform():
    seqs = palindromes(100_000, 7, torch.Generator().manual_seed(0))
    freq = torch.bincount(seqs[:, :4].flatten(), minlength=10).float() / (100_000 * 4)
    assert (freq - 0.1).abs().max() < 0.003  # 0.1 ± ~6 standard errors
    # the digits of the free half are independent of each other
    assert (seqs[:, 0] == seqs[:, 1]).float().mean().sub(0.1).abs() < 0.005


def test_batch_inputs_and_target():
    x, y = palindrome_batch(64, 9, torch.Generator().manual_seed(1))
    assert x.shape == (64, 9) and y.shape == (64,)
    assert torch.equal(y, x[:, 0])  # the last digit mirrors the first


def test_test_set_is_fixed_and_not_a_training_stream():
    a, b = palindrome_test_set(6, 1000), palindrome_test_set(6, 1000)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    train = palindrome_batch(1000, 6, torch.Generator().manual_seed(0))
    assert not torch.equal(a[0], train[0])
    assert not torch.equal(palindrome_test_set(7, 1000)[0][:, :6], a[0])


def test_corpus_statistics_match_the_report(corpus, corpus_path):
    import hashlib

    assert hashlib.sha256(corpus_path.read_bytes()).hexdigest() == CORPUS_SHA256
    stats = corpus.stats()
    assert stats["characters"] == 540_241 and stats["distinct"] == 87
    assert corpus.vocab == sorted(corpus.vocab) and corpus.text[0] == "\ufeff"
    assert (stats["book_start"], stats["book_end"]) == (583, 521_522)
    v0, v1 = corpus.val
    assert v1 == 521_522 and v1 - v0 == int((521_522 - 583) * 0.05)
    assert corpus.decode(corpus.encode("Rapunzel")) == "Rapunzel"


def test_training_windows_never_touch_the_validation_slice(corpus):
    v0, v1 = corpus.val
    starts = corpus.window_starts(500_000, 30, torch.Generator().manual_seed(0))
    assert not ((starts + 31 > v0) & (starts < v1)).any()
    assert starts.min() >= 0 and starts.max() + 31 <= len(corpus.text)
    assert (starts >= v1).any() and (starts < v0).any()  # the licence after the book is used
    x, y = corpus.batch(64, 30, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (64, 30)
    assert torch.equal(x[:, 1:], y[:, :-1])
    first = corpus.window_starts(64, 30, torch.Generator().manual_seed(0))[0].item()
    assert corpus.decode(x[0].tolist()) == corpus.text[first : first + 30]


def test_validation_windows_are_consecutive(corpus):
    x, y = corpus.validation(30)
    v0, v1 = corpus.val
    assert x.shape[1] == 30 and x.shape[0] == (v1 - v0 - 1) // 30
    assert corpus.decode(x.flatten().tolist()) == corpus.text[v0 : v0 + x.numel()]
    assert torch.equal(x.flatten()[1:], y.flatten()[:-1])


def test_short_or_undecodable_corpus_is_a_clear_error(tmp_path):
    short = Corpus("once upon a time " * 20)
    with pytest.raises(CorpusError, match="too short for seq_length 30"):
        short.check_length(30)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Märchen".encode("latin-1"))
    with pytest.raises(CorpusError, match="not UTF-8"):
        Corpus.from_file(bad)
    with pytest.raises(CorpusError, match="empty"):
        Corpus("")


# --- the frequency-discrimination task (the phased LSTM's) -------------------------------------------
@pytest.mark.parametrize("sampling, lengths", [("regular", (15, 125)), ("fine", (150, 1250)),
                                               ("async", (15, 125))])
def test_frequency_batches_sample_a_sine_in_its_window_with_balanced_labels(sampling, lengths):
    from rnnrepro.data.frequency import HORIZON, frequency_batch

    gen = torch.Generator().manual_seed(3)
    values, times, mask, labels = frequency_batch(512, sampling, gen)
    n = mask.sum(1)
    assert values.shape == (512, times.shape[1], 1) and times.shape[1] == lengths[1]
    assert lengths[0] <= n.min() and n.max() <= lengths[1]
    assert (mask[:, :-1] >= mask[:, 1:]).all()  # the real samples first, then the padding
    assert (times >= 0).all() and (times <= HORIZON).all()
    assert (times[:, 1:] >= times[:, :-1]).all()  # sorted, padding repeating the last time
    last = times.gather(1, (n - 1).unsqueeze(1))
    assert torch.equal(torch.where(mask, times, last), times)
    assert values.abs().max() <= 1
    # half of every batch is drawn in the labelled band; the rest falls there about 4 % of the time
    assert 256 <= labels.sum() <= 256 + 40
    if sampling != "async":  # regular sampling: one step apart
        step = {"regular": 1.0, "fine": 0.1}[sampling]
        gaps = (times[:, 1:] - times[:, :-1])[mask[:, 1:]]
        assert torch.allclose(gaps, torch.full_like(gaps, step), atol=1e-3)
    again = frequency_batch(512, sampling, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip((values, times, mask, labels), again))


def test_frequency_labels_are_the_periods_in_the_band():
    from rnnrepro.data import frequency

    gen = torch.Generator().manual_seed(4)
    values, times, mask, labels = frequency.frequency_batch(256, "regular", gen)
    # read each sequence's period back from its zero crossings: a positive one (5 to 6 ms)
    # crosses zero every 2.5 to 3 ms
    crossings = ((values[:, 1:, 0] * values[:, :-1, 0]) < 0) & mask[:, 1:]
    spans = times.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1) - times[:, 0]
    half_periods = spans / crossings.sum(1).clamp(min=1)
    positive = labels == 1
    assert (half_periods[positive] > 2.0).all() and (half_periods[positive] < 3.5).all()
    with pytest.raises(ValueError, match="sampling must be one of regular, fine, async"):
        frequency.frequency_batch(4, "hourly")

"""Greedy and random sampling, temperature, and long generation across chunks."""

import torch

from rnnrepro.models.sampling import generate, pick, samples_at
from rnnrepro.models.text import TextGenerationModel


def test_random_sampling_approaches_greedy_as_temperature_goes_to_zero():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2000, 87, generator=gen)
    greedy = pick(logits, "greedy")
    cold = pick(logits, "random", temperature=1e-3, generator=gen)
    assert (cold == greedy).float().mean() == 1.0
    warm = pick(logits, "random", temperature=1.0, generator=gen)
    assert (warm == greedy).float().mean() < 0.5


def test_random_sampling_approaches_uniform_at_high_temperature():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 20, generator=gen).expand(100_000, -1) * 3
    hot = torch.bincount(pick(logits, "random", 1e4, gen), minlength=20).double() / 100_000
    assert (hot - 0.05).abs().max() < 0.004  # 0.05 ± ~6 standard errors
    plain = torch.bincount(pick(logits, "random", 1.0, gen), minlength=20).double() / 100_000
    assert (plain - 0.05).abs().max() > 0.05


def test_chunked_generation_equals_one_long_pass():
    torch.manual_seed(0)
    model = TextGenerationModel(13, hidden=16).eval()
    prompt = torch.randint(13, (2, 45))  # longer than one 30-step chunk
    new, _ = generate(model, prompt, 100, "greedy", chunk=30)
    whole = torch.cat([prompt, new], dim=1)
    logits, _ = model(whole)
    # every generated character is the argmax after the whole history in one pass
    assert torch.equal(logits[:, prompt.shape[1] - 1 : -1].argmax(-1), new)
    # and random generation with the same seed gives the same text whatever the chunking
    a, _ = generate(model, prompt, 60, "random", 1.0, torch.Generator().manual_seed(3), chunk=30)
    b, _ = generate(model, prompt, 60, "random", 1.0, torch.Generator().manual_seed(3), chunk=7)
    assert torch.equal(a, b)


def test_samples_records():
    torch.manual_seed(0)
    vocab = list("abcdefghij")
    model = TextGenerationModel(len(vocab), hidden=8)
    first = torch.tensor([0, 5])
    rows = samples_at(model, vocab, first, 30, (0.5, 2.0), torch.Generator().manual_seed(0), step=7)
    assert len(rows) == 2 * 3
    assert {(r["method"], r["temperature"]) for r in rows} == {("greedy", None), ("random", 0.5),
                                                              ("random", 2.0)}
    assert all(len(r["text"]) == 30 and r["text"][0] == r["first"] and r["step"] == 7 for r in rows)

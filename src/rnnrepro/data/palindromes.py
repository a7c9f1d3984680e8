"""Palindromes, generated as whole batches on the device, and their fixed held-out sets."""

import torch

from rnnrepro.data.seeds import derived_seed


def palindromes(batch, length, generator=None, device=None):
    """(batch, length) random palindromes: ceil(length/2) uniform digits, then mirrored."""
    half = torch.randint(10, (batch, (length + 1) // 2), generator=generator, device=device)
    return torch.cat([half, half[:, : length // 2].flip(1)], dim=1)


def palindrome_batch(batch, input_length, generator=None, device=None):
    """Inputs are the first input_length digits of a palindrome of input_length + 1; the
    target is its last digit."""
    digits = palindromes(batch, input_length + 1, generator, device)
    return digits[:, :-1], digits[:, -1]


def palindrome_test_seed(input_length):
    """Seed of the fixed held-out set, from a stream no training seed shares."""
    return derived_seed("rnnrepro", "palindrome-test", input_length)


def palindrome_test_set(input_length, size=10_000):
    """The fixed held-out palindromes for one input_length, the same on every device."""
    gen = torch.Generator().manual_seed(palindrome_test_seed(input_length))
    return palindrome_batch(size, input_length, gen)

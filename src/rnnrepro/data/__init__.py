"""The data stage: palindrome batches and held-out sets, and the text corpus (its download and reading)."""

"""The report's small words, chosen in Python: numbers as words, and singular or plural."""

COUNT_WORDS = ("No", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten",
               "Eleven", "Twelve")


def count_word(n):
    """A count at the start of a sentence: a word up to twelve, digits after."""
    return COUNT_WORDS[n] if 0 <= n < len(COUNT_WORDS) else str(n)


def plural(n, one, many):
    return one if n == 1 else many


def number(value):
    """A table value as a float, None where it is missing (NaN)."""
    return None if value is None or value != value else float(value)

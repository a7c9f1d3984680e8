"""Seeds derived from names, so that every purpose draws from a stream of its own."""

import hashlib


def derived_seed(*parts):
    """A seed of its own for every purpose: 48 bits of the sha256 of the parts joined by /."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:6], "big")

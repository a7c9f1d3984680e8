"""How far a handful of seeds can be trusted: the uncertainty of every rate is a Wilson score
interval (95 %); two rates are compared by Fisher's exact test; a comparison of two settings
over paired runs is the mean paired difference with a percentile bootstrap interval, decided
only from MIN_PAIRS pairs. The verdict words of the scorecard are here too.
"""

import math

import numpy as np

# every verdict a claim can get, from the strongest for it to the strongest against
VERDICTS = ("held", "mostly held", "unresolved", "mostly not held", "not held", "not run")
Z95 = 1.959963984540054  # the two-sided 95 % normal quantile
ALPHA = 0.05  # a test's p value below this tells two rates apart
BOOTSTRAP = 10_000  # resamples of a paired bootstrap
BOOTSTRAP_SEED = 0  # fixed: the same tables give the same interval


def wilson(k, n, z=Z95):
    """The Wilson score interval (lo, hi) for k successes in n trials; (None, None) for n = 0."""
    if n == 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_interval(differences, resamples=BOOTSTRAP, seed=BOOTSTRAP_SEED):
    """Mean of paired differences and its percentile bootstrap 95 % interval (lo, hi)."""
    d = np.asarray(differences, dtype=float)
    if len(d) == 0:
        return None, None, None
    if len(d) == 1:
        return float(d[0]), None, None
    rng = np.random.default_rng(seed)
    means = d[rng.integers(len(d), size=(resamples, len(d)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)


def share_verdict(k, n):
    """The verdict on a claim that held in k of n seeds: held (every seed) and not held (no
    seed) say what was seen; in between, "mostly held" or "mostly not held" where the Wilson
    interval of the share of seeds lies wholly above or below one half, else "unresolved":
    that many seeds cannot tell which way the claim goes."""
    if n == 0:
        return "not run"
    if k == n:
        return "held"
    if k == 0:
        return "not held"
    lo, hi = wilson(k, n)
    return "mostly held" if lo > 0.5 else "mostly not held" if hi < 0.5 else "unresolved"


# a comparison needs this many independent pairs before its bootstrap interval decides it:
# with fewer, the percentile interval is little more than [min, max] of the differences
MIN_PAIRS = 6


def difference_verdict(lo, hi, pairs):
    """A comparison judged by the interval of its paired difference (good minus bad)."""
    if lo is None or pairs < MIN_PAIRS:
        return "unresolved"
    return "held" if lo > 0 else "not held" if hi < 0 else "unresolved"


def fisher_exact(k1, n1, k2, n2):
    """Two-sided p value of Fisher's exact test that k1 of n1 and k2 of n2 come from one
    rate: the probability, with the margins fixed, of a table as unlikely as the one seen."""
    k, n = k1 + k2, n1 + n2

    def p(a):  # hypergeometric probability of a successes in the first group
        return math.comb(n1, a) * math.comb(n2, k - a) / math.comb(n, k)

    seen = p(k1)
    return min(1.0, sum(q for a in range(max(0, k - n2), min(k, n1) + 1)
                        if (q := p(a)) <= seen * (1 + 1e-9)))

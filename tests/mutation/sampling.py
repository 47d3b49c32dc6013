"""A seeded, stratified sample of mutmut's mutants, and what its score says about all of them.

The whole population (about 17,000 mutants) takes hours on a 2-core machine; CI has about 35
minutes. So `make mutation` runs a random sample: each module (stratum) gets its share of the
sample in proportion to its mutants (at least one), drawn with a seed that is printed, so a run
can be repeated exactly (`run.py --seed S`). CI seeds with the commit, so a new commit draws
new mutants: tests written against one sample do not fool the next.

The score is estimated from the sample with a 95% interval, and the gate is on the interval's
lower bound: "at least 90% of all mutants are killed" is claimed only when the sample leaves
less than a 2.5% chance that the true score is lower. Stdlib only: the formulas are short and
textbook (stratified estimate, Wilson score interval); no statistics library is needed for them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95%: the normal distribution's 97.5th percentile


def allocate(sizes: Mapping[str, int], total: int) -> dict[str, int]:
    """How many mutants each stratum gets: proportional to its size, largest remainders first.

    Every non-empty stratum gets at least one (a module no sample reaches could rot unseen),
    and none gets more than it has. A total at or above the population takes everything.
    """
    strata = {name: size for name, size in sizes.items() if size > 0}
    population = sum(strata.values())
    if total >= population:
        return dict(strata)
    if total < len(strata):
        raise ValueError(f"a sample of {total} cannot reach all {len(strata)} modules")
    shares = {name: total * size / population for name, size in strata.items()}
    counts = {name: max(1, min(strata[name], math.floor(share))) for name, share in shares.items()}
    # Hand out what is left by the largest remainder (ties by name: deterministic).
    order = sorted(strata, key=lambda name: (-(shares[name] - math.floor(shares[name])), name))
    while sum(counts.values()) < total:
        for name in order:
            if sum(counts.values()) >= total:
                break
            if counts[name] < strata[name]:
                counts[name] += 1
    while sum(counts.values()) > total:  # the minimum of one pushed it over: take from the largest
        name = max((n for n in counts if counts[n] > 1), key=lambda n: (counts[n] - shares[n], n))
        counts[name] -= 1
    return counts


def draw(population: Mapping[str, Sequence[str]], total: int, seed: str) -> dict[str, list[str]]:
    """The sampled mutant names per stratum: a seeded draw without replacement in each."""
    counts = allocate({name: len(names) for name, names in population.items()}, total)
    chosen = {}
    for name, count in sorted(counts.items()):
        # One generator per stratum: a module that grows moves no other module's draw.
        rng = random.Random(f"{seed}:{name}")
        chosen[name] = sorted(rng.sample(sorted(population[name]), count))
    return chosen


@dataclass(frozen=True)
class Estimate:
    """The estimated share of killed mutants in the population, with its 95% interval."""

    score: float
    low: float
    high: float
    sampled: int
    population: int


def wilson(killed: int, sampled: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: honest near 100%, where the normal one is not."""
    if sampled <= 0:
        return 0.0, 1.0
    p = killed / sampled
    denominator = 1 + z * z / sampled
    centre = (p + z * z / (2 * sampled)) / denominator
    half = z * math.sqrt(p * (1 - p) / sampled + z * z / (4 * sampled * sampled)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def estimate(results: Mapping[str, tuple[int, int]], sizes: Mapping[str, int]) -> Estimate:
    """The population's score from per-stratum (killed, checked) and each stratum's size.

    The point estimate weighs each stratum by its size (a stratified mean). The interval is
    Wilson's on the sample's effective size: the stratified variance (with the finite-population
    correction) turned into the size of a simple random sample of the same precision, capped at
    the real sample size (strata sampled once add no variance, so no credit is taken for them). A
    stratum with no checked mutant makes the estimate unusable (ValueError): never guessed.
    """
    population = sum(sizes[name] for name in results)
    sampled = sum(checked for _, checked in results.values())
    if not population or not sampled:
        raise ValueError("no mutant was checked")
    score = 0.0
    variance = 0.0
    for name, (killed, checked) in results.items():
        if checked <= 0:
            raise ValueError(f"no mutant of {name} was checked")
        weight = sizes[name] / population
        p = killed / checked
        score += weight * p
        correction = (1 - checked / sizes[name]) if sizes[name] > 1 else 0.0
        if checked > 1:
            variance += weight * weight * correction * p * (1 - p) / (checked - 1)
    if all(checked >= sizes[name] for name, (_, checked) in results.items()):
        # Every mutant checked: the score is exact, nothing is estimated.
        return Estimate(score=score, low=score, high=score, sampled=sampled, population=population)
    if variance > 0:
        # Never more precision than a simple random sample of the same size: a stratum with one
        # sampled mutant adds no variance above (none can be estimated from one), which would
        # otherwise make a small sample over many modules look far more precise than it is.
        effective = min(max(score * (1 - score) / variance, 1.0), float(sampled))
    else:  # every stratum all killed or all survived: no spread seen; Wilson on the real count
        effective = float(sampled)
    low, high = wilson(round(score * effective), round(effective)) if effective else (0.0, 1.0)
    low, high = min(low, score), max(high, score)
    return Estimate(score=score, low=low, high=high, sampled=sampled, population=population)

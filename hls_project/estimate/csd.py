"""Canonical signed digits: how a constant multiplier becomes shifts and adds.

Every integer has exactly one canonical signed-digit form (the non-adjacent form): digits in
{-1, 0, +1} with no two adjacent non-zero digits. It has the fewest non-zero digits of all
signed-digit forms, so ``x * c`` costs ``nonzero_digits(c) - 1`` adders (a zero costs nothing, a
power of two is only wiring). Example: 7 = 8 - 1, two terms, one subtractor.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=65536)
def csd_terms(value: int) -> tuple[tuple[int, int], ...]:
    """The non-zero digits of ``value`` as ``(shift, sign)`` pairs, lowest shift first:
    ``value == sum(sign << shift)``."""
    terms = []
    n, shift = int(value), 0
    while n != 0:
        if n & 1:
            digit = 2 - (n & 3)      # +1 when n = 1 (mod 4), -1 when n = 3 (mod 4)
            terms.append((shift, digit))
            n -= digit
        n >>= 1
        shift += 1
    return tuple(terms)


def nonzero_digits(codes) -> np.ndarray:
    """Number of non-zero canonical signed digits of every integer in ``codes``."""
    codes = np.asarray(codes, dtype=np.int64)
    values, inverse = np.unique(codes, return_inverse=True)
    counts = np.array([len(csd_terms(int(v))) for v in values], dtype=np.int64)
    return counts[inverse].reshape(codes.shape)

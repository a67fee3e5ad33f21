"""Checks of the design inputs every public function of the package takes: a bad value raises a
ValueError that names the field, so a form or a command can show it (never a nan or a traceback
from deep inside scipy)."""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from decimal import Decimal


def check_real(name: str, value, *, low: float | None = None, high: float | None = None,
               low_open: bool = True, high_open: bool = True) -> float:
    """``value`` as a finite float within the bounds (open or closed), else ValueError naming ``name``.
    Decimals (a database sum of money) are accepted and converted."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return value


MIN_ALPHA = 1e-9


def check_alpha(value, name: str = "alpha") -> float:
    """A significance level in (0, 0.5]; below 1e-9 the quantiles of the intervals run out of
    floating point (and no shop tests at that level)."""
    value = check_real(name, value, low=0.0, high=0.5, high_open=False)
    if value < MIN_ALPHA:
        raise ValueError(f"{name} must be >= {MIN_ALPHA}, got {value!r}")
    return value


def check_power(value, name: str = "power") -> float:
    """A power in (0.5, 0.99]: above 0.99 the sample sizes explode and add nothing a shop can use."""
    return check_real(name, value, low=0.5, high=0.99, high_open=False)


def check_rate(value, name: str) -> float:
    """A probability strictly inside (0, 1)."""
    return check_real(name, value, low=0.0, high=1.0)


MAX_COUNT = 10**15
"""Counts above this are not a shop's (and would overflow floating point in the statistics)."""


def check_count(value, name: str) -> int:
    """A non-negative integer up to ``MAX_COUNT`` (numpy integers and integral floats are accepted)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        value = int(value)
    else:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    if value > MAX_COUNT:
        raise ValueError(f"{name} must be <= {MAX_COUNT}, got {value}")
    return value


def check_successes(successes, n, successes_name: str, n_name: str) -> tuple[int, int]:
    """Two counts with ``successes <= n``."""
    successes = check_count(successes, successes_name)
    n = check_count(n, n_name)
    if successes > n:
        raise ValueError(f"{successes_name} ({successes}) must be <= {n_name} ({n})")
    return successes, n


def check_shares(shares: Sequence, name: str = "shares") -> list[float]:
    """Traffic shares: at least one, each positive and finite; returned normalised to sum 1."""
    if isinstance(shares, (str, bytes)) or not isinstance(shares, Sequence):
        raise ValueError(f"{name} must be a sequence of positive numbers, got {shares!r}")
    if len(shares) == 0:
        raise ValueError(f"{name} must not be empty")
    values = [check_real(f"{name}[{i}]", share, low=0.0) for i, share in enumerate(shares)]
    total = math.fsum(values)
    if not math.isfinite(total):
        raise ValueError(f"{name} must sum to a finite number")
    return [value / total for value in values]

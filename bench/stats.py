"""Small helpers for figures: percentiles, rounding, rates."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """Nearest-rank percentile of ``values`` (``fraction`` in 0..1); None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, float | None]:
    """p50, p99 and max of durations given in seconds, in milliseconds with one decimal."""
    values = [s * 1000 for s in seconds]
    return {
        "p50_ms": rounded(percentile(values, 0.50)),
        "p99_ms": rounded(percentile(values, 0.99)),
        "max_ms": rounded(max(values)) if values else None,
    }


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)

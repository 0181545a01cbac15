"""Figures tests measure (e.g. expiry lateness), printed in pytest's closing summary."""

from __future__ import annotations

LINES: list[str] = []


def report(line: str) -> None:
    """Keep ``line`` for the summary at the end of the run."""
    LINES.append(line)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (``fraction`` in 0..1)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]

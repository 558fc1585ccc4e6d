"""How every table and plot writes a metric read from a results file.

Why one place: the report, the run summaries, ``negtune compare`` and the sweep plot all print
the same numbers; formatting them alike keeps their tables comparable by eye.
"""
from __future__ import annotations

import math
from typing import Any, Optional


def finite_or_none(value: Any) -> Optional[float]:
    """A metric as a float, or None when absent or NaN (for tables and plots)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def format_metric(value: Any, for_csv: bool = False) -> str:
    """How every table writes a metric: 6 decimals (empty when missing) in CSV files, meant
    for further analysis; 3 decimals ("-" when missing) in markdown and on the console."""
    number = finite_or_none(value)
    if number is None:
        return "" if for_csv else "-"
    return f"{number:.6f}" if for_csv else f"{number:.3f}"

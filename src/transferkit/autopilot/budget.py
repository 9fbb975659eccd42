"""The autopilot's time budget: durations such as ``"10m"`` and the run's clock.

A budget is a number of seconds (``600``, ``2.5``) or a text duration made of
``<number><unit>`` parts with units ``h``, ``m`` and ``s`` (``"10m"``,
``"1h30m"``, ``"90s"``, ``"45"`` = 45 s); ``None`` means no limit.

Example
-------
>>> parse_duration("1h30m"), parse_duration(90), parse_duration(None)
(5400.0, 90.0, None)
>>> clock = Clock(budget=60.0)
>>> clock.left() <= 60.0
True
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

from transferkit.validation import TransferKitInputError

__all__ = ["DEFAULT_TIME_BUDGET", "Clock", "parse_duration"]

#: The default budget of a run, in seconds: what a laptop user waits for.
DEFAULT_TIME_BUDGET = 600.0
#: The default budget of one strategy that trains a network (fine-tuning), in
#: seconds, spread over its evaluation fits and the refit: on a CPU such a
#: strategy could otherwise take the whole run.
DEFAULT_STRATEGY_TIME_BUDGET = 240.0

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([hms]?)")


def _invalid(value) -> TransferKitInputError:
    return TransferKitInputError(
        f"time_budget must be a positive number of seconds or a duration such as '90s', "
        f"'10m' or '1h30m' (None for no limit), got {value!r}.")


def parse_duration(value) -> float | None:
    """Seconds in ``value`` (module docstring); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _invalid(value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        parts = _PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise _invalid(value)
        units = [u for _, u in parts]
        if len(parts) > 1 and ("" in units or len(set(units)) != len(units)):
            raise _invalid(value)
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise _invalid(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise _invalid(value)
    return seconds


@dataclass
class Clock:
    """Seconds since the run started, against an optional budget."""

    budget: float | None = None
    start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return math.inf if self.budget is None else self.budget - self.elapsed()

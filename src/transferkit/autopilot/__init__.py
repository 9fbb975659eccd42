"""Autopilot: evaluate every registered strategy honestly and recommend one."""

from transferkit.autopilot.registry import (
    Strategy,
    TaskInfo,
    available_strategies,
    get_strategy,
    register_strategy,
    unregister_strategy,
)
from transferkit.autopilot.runner import Autopilot, AutopilotResult

__all__ = [
    "Autopilot",
    "AutopilotResult",
    "Strategy",
    "TaskInfo",
    "available_strategies",
    "get_strategy",
    "register_strategy",
    "unregister_strategy",
]

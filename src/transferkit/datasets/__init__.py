"""Built-in real data sets, loaded from installed packages (no downloads)."""

from transferkit.datasets.lending_club import DemoTask, lending_club_task, load_lending_club

__all__ = ["DemoTask", "lending_club_task", "load_lending_club"]

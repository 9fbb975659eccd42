"""Built-in real data sets, loaded from installed packages (no downloads)."""

from transferkit.datasets.ames import ames_task, load_ames
from transferkit.datasets.lending_club import DemoTask, lending_club_task, load_lending_club

__all__ = ["DemoTask", "ames_task", "lending_club_task", "load_ames", "load_lending_club"]

"""Built-in real data sets, loaded from installed packages (no downloads)."""

from transferkit.datasets.ames import ames_task, load_ames
from transferkit.datasets.drug_reviews import load_drug_reviews
from transferkit.datasets.fashion_mnist import load_fashion_mnist
from transferkit.datasets.image_folder import load_image_folder
from transferkit.datasets.lending_club import DemoTask, lending_club_task, load_lending_club

__all__ = ["DemoTask", "ames_task", "lending_club_task", "load_ames", "load_drug_reviews",
           "load_fashion_mnist", "load_image_folder", "load_lending_club"]

"""transferkit: transfer learning for small labelled data.

Point it at a small labelled target data set and a larger related source data
set; it measures the shift between them, tries the sensible transfer
strategies, evaluates them honestly on the target against the target-only
baseline, and says whether transfer helps.

Importing transferkit never imports PyTorch; backbones and deep methods load
it on demand.
"""

from transferkit.domains import read_domains, split_table, stack_domains
from transferkit.preprocessing import TabularPreprocessor
from transferkit.validation import TransferKitInputError

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "TabularPreprocessor",
    "TransferKitInputError",
    "read_domains",
    "split_table",
    "stack_domains",
]

"""Feature-based transfer: map the domains into a shared feature space.

Every method is a :class:`~transferkit.base.DomainAdapter`: ``fit_transform``
maps each row by its own domain (what a ``Pipeline`` calls while fitting),
``transform`` maps new rows as target rows.

* :class:`CORAL` - correlation alignment (Sun, Feng & Saenko, AAAI 2016).
* :class:`SubspaceAlignment` - PCA subspace alignment (Fernando et al., ICCV 2013).
* :class:`TCA` - transfer component analysis (Pan et al., IEEE TNN 2011), exact
  for small ``n`` and Nystroem-approximated for large ``n``.
* :class:`JDA` - joint distribution adaptation (Long et al., ICCV 2013): TCA
  plus class-conditional MMD terms with target pseudo-labels.

Example
-------
>>> import numpy as np
>>> from sklearn.pipeline import Pipeline
>>> from transferkit.domains import stack_domains
>>> from transferkit.baselines import Pooled
>>> from transferkit.feature_based import CORAL
>>> rng = np.random.default_rng(0)
>>> ys = rng.integers(0, 2, 100)
>>> X, y = stack_domains(rng.normal(size=(100, 3)) + ys[:, None], ys,
...                      rng.normal(size=(50, 3)) * 2.0)
>>> model = Pipeline([("adapt", CORAL()), ("model", Pooled())]).fit(X, y)
>>> model.predict(X[100:]).shape
(50,)
"""

from transferkit.feature_based.coral import CORAL
from transferkit.feature_based.jda import JDA
from transferkit.feature_based.subspace import SubspaceAlignment
from transferkit.feature_based.tca import TCA

__all__ = ["CORAL", "JDA", "SubspaceAlignment", "TCA"]

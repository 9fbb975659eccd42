"""Learning-rate schedule of the training engine: linear warm-up, then cosine decay.

For step :math:`t` (0-based) of :math:`T` optimisation steps with
:math:`W` warm-up steps, every parameter group's learning rate is its base
rate times

.. math::

    f(t) = \\begin{cases} (t + 1) / W & t < W \\\\
           \\tfrac12 \\bigl(1 + \\cos(\\pi \\, (t - W) / \\max(1, T - W))\\bigr) & t \\ge W
           \\end{cases}

(Goyal et al. 2017, "Accurate, large minibatch SGD", for the warm-up;
Loshchilov & Hutter 2017, "SGDR", for the cosine).  A pure function of the
step, so a resumed run needs only the step to continue on the same curve.

Example
-------
>>> [round(warmup_cosine(t, 10, 2), 3) for t in (0, 1, 2, 6, 9)]
[0.5, 1.0, 1.0, 0.5, 0.038]
"""

from __future__ import annotations

import math

__all__ = ["warmup_cosine"]


def warmup_cosine(step: int, total_steps: int, warmup_steps: int) -> float:
    """The factor :math:`f(t)` of the module docstring, in (0, 1]."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return 0.5 * (1.0 + math.cos(math.pi * progress))

"""Autopilot registration of the fine-tuning strategies (image and text tasks).

They train the backbone itself, so they need the raw inputs
(``Autopilot.run(X, y, raw=...)``; ``transferkit run`` passes them) and the
``deep`` extra (torch), and apply to tasks whose backbone can be fine-tuned:
the built-in image backbones (MobileNetV2, EfficientNet-Lite0) and Hugging
Face text encoders.

* ``finetune_lp_ft``: LP-FT on the labelled target rows
  (:class:`~transferkit.deep.FineTuneClassifier`, Kumar et al. 2022);
* ``finetune_source_then_target``: the same, after fine-tuning on the
  labelled source rows (:class:`~transferkit.deep.transfer.FineTuneTransfer`).

Each fit gets :attr:`TaskInfo.fit_budget` seconds (the autopilot's
``strategy_time_budget`` spread over the strategy's fits) and stops cleanly
when it runs out; the leaderboard counts such folds (``budget_stops``).  CPU
settings: images at 128 px (the frozen features use the backbone's 224),
texts cut to 128 tokens; both keep the estimators' small-data defaults.
"""

from __future__ import annotations

import importlib.util

from transferkit.autopilot.registry import Strategy, TaskInfo, register_strategy
from transferkit.validation import TransferKitInputError

#: Image backbones whose blocks the fine-tuning estimators know.
FINE_TUNABLE_IMAGE_BACKBONES = ("mobilenet_v2", "efficientnet_lite0")
#: Input size (px) and token length the autopilot fine-tunes at (see above).
IMAGE_SIZE, MAX_TOKENS = 128, 128


def _fine_tunable(task: TaskInfo) -> bool:
    if not (task.raw_inputs and task.backbone and task.n_labelled_target >= 6) or (
            importlib.util.find_spec("torch") is None):
        return False
    if task.modality == "image":
        return task.backbone in FINE_TUNABLE_IMAGE_BACKBONES
    if task.modality != "text":
        return False
    from transferkit.backbones import get_backbone_config

    try:
        return get_backbone_config(task.backbone).modality == "text"
    except TransferKitInputError:          # not a registered name: not offered
        return False


def _with_source(task: TaskInfo) -> bool:
    return _fine_tunable(task) and task.n_source > 0


def _builder(stages: str):
    def build(task: TaskInfo, seed):
        from transferkit.deep.finetune import FineTuneClassifier, FineTuneRegressor
        from transferkit.deep.transfer import FineTuneTransfer

        model = FineTuneClassifier if task.task == "classification" else FineTuneRegressor
        options = ({"input_size": IMAGE_SIZE} if task.modality == "image"
                   else {"max_length": MAX_TOKENS})
        return FineTuneTransfer(model(task.backbone, method="lp_ft", backbone_options=options,
                                      random_state=seed),
                                stages=stages, time_budget=task.fit_budget, random_state=seed)
    return build


for _strategy in (
    Strategy("finetune_lp_ft", "model",
             "The backbone fine-tuned on the labelled target rows (linear probe, then "
             "every layer: LP-FT).", _builder("target"), _fine_tunable, inputs="raw"),
    Strategy("finetune_source_then_target", "model",
             "The backbone fine-tuned on the labelled source rows, then LP-FT on the "
             "target rows.", _builder("source_then_target"), _with_source, inputs="raw"),
):
    register_strategy(_strategy, replace=True)

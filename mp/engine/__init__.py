"""The one training loop every chapter plugs into (see `trainer.py`)."""

from mp.engine.optimizers import OPTIMIZERS, make_optimizer
from mp.engine.schedules import SCHEDULES, make_schedule
from mp.engine.strategy import STRATEGIES, is_chief, make_strategy
from mp.engine.task import ClassificationTask, SingleModelTask, Task, global_mean
from mp.engine.trainer import Interrupted, Trainer, TrainingDiverged, seed_everything

__all__ = [
    "ClassificationTask",
    "SingleModelTask",
    "Interrupted",
    "OPTIMIZERS",
    "SCHEDULES",
    "STRATEGIES",
    "Task",
    "Trainer",
    "TrainingDiverged",
    "global_mean",
    "is_chief",
    "make_optimizer",
    "make_schedule",
    "make_strategy",
    "seed_everything",
]

"""What the deep-RL tests share: a short training run through the engine."""

import numpy as np

from mp.engine import Trainer


def train(task, model_dir, updates, **kwargs):
    """Trains `task` for `updates` updates (total, counting a resumed run's) in `model_dir`."""
    trainer = Trainer(task, str(model_dir), train_steps=updates, log_every=updates,
                      checkpoint_every=10**6, progress=False, **kwargs)
    return trainer.fit(task.data)


def last_returns(task, count=20):
    """Mean return of the last `count` finished training episodes."""
    return float(np.mean(task.collector.episodes[-count:, 1]))

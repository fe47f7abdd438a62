"""What the deep-RL tests share: a short training run through the engine."""

import numpy as np

from mp.engine import Trainer, seed_everything


def train(task, model_dir, updates, **kwargs):
    """Trains `task` for `updates` updates (total, counting a resumed run's) in `model_dir`."""
    trainer = Trainer(task, str(model_dir), train_steps=updates, log_every=updates,
                      checkpoint_every=10**6, progress=False, **kwargs)
    return trainer.fit(task.data)


def whole_and_resumed(make, tmp_path, updates=6, first_updates=3):
    """`make()` trained `updates` updates in one go, and in another folder `first_updates`,
    then resumed there to `updates` by a fresh task under another global seed (so the
    checkpoint alone must decide). Returns `(whole, first, resumed, resumed fit's result)`."""
    seed_everything(0, deterministic=True)
    whole = make()
    train(whole, tmp_path / "whole", updates)
    seed_everything(0, deterministic=True)
    first = make()
    train(first, tmp_path / "split", first_updates)
    seed_everything(1, deterministic=True)
    resumed = make()
    return whole, first, resumed, train(resumed, tmp_path / "split", updates)


def last_returns(task, count=20):
    """Mean return of the last `count` finished training episodes."""
    return float(np.mean(task.collector.episodes[-count:, 1]))

"""Choosing a `tf.distribute` strategy by name.

The model code never places devices: the engine builds variables inside
`strategy.scope()` and runs each step through `strategy.run`, so the same
program trains on one CPU, on all local GPUs (`mirrored`) or on several
machines (`multi_worker`, configured by the `TF_CONFIG` environment variable).
"""

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")
# One instance per name and process: a second MirroredStrategy in the same process can mix
# up the collective all-reduces of the first (shape mismatches when a second model trains),
# and a MultiWorkerMirroredStrategy may only be created once.
_INSTANCES = {}


def make_strategy(name="default"):
    """Returns the `tf.distribute.Strategy` called `name`.

    Args:
      name: `default` (the current device), `mirrored` (synchronous data
        parallelism over the local GPUs, or the CPU when there is none) or
        `multi_worker` (synchronous data parallelism over the machines listed in
        `TF_CONFIG`).

    The distributed strategies are made once per process and then reused, so
    several trainings in one process (a notebook, a test session) share them.

    Raises:
      ValueError: for an unknown name, or `multi_worker` without `TF_CONFIG`.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name in _INSTANCES:
        return _INSTANCES[name]
    if name == "mirrored":
        _INSTANCES[name] = tf.distribute.MirroredStrategy()
        return _INSTANCES[name]
    if name == "multi_worker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise ValueError(
                "strategy=multi_worker needs the TF_CONFIG environment variable "
                "(cluster and task of this worker); see README 'Several machines'."
            )
        try:
            json.loads(config)
        except json.JSONDecodeError as e:
            raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from None
        _INSTANCES[name] = tf.distribute.MultiWorkerMirroredStrategy()
        return _INSTANCES[name]
    raise ValueError(
        f"Unknown strategy. Expected one of {', '.join(STRATEGIES)}. "
        f"Received: strategy={name!r}"
    )


def is_chief(strategy):
    """True for the worker that writes checkpoints, summaries and outputs."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief

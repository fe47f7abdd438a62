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


def make_strategy(name="default"):
    """Returns the `tf.distribute.Strategy` called `name`.

    Args:
      name: `default` (the current device), `mirrored` (synchronous data
        parallelism over the local GPUs, or the CPU when there is none) or
        `multi_worker` (synchronous data parallelism over the machines listed in
        `TF_CONFIG`).

    Raises:
      ValueError: for an unknown name, or `multi_worker` without `TF_CONFIG`.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
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
        return tf.distribute.MultiWorkerMirroredStrategy()
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

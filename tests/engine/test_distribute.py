"""MirroredStrategy over two logical CPU devices trains like one device.

Logical devices must be configured before TensorFlow starts, so the
comparison runs in a fresh interpreter (`_SCRIPT`), which prints JSON.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

_SCRIPT = r"""
import json, os, sys, tempfile
import numpy as np, tensorflow as tf, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from mp.engine import ClassificationTask, Trainer

rng = np.random.default_rng(0)
x = rng.normal(size=(512, 6, 6, 1)).astype("float32")
y = np.argmax(x.reshape(512, 36) @ rng.normal(size=(36, 4)), 1).astype("int32")
data = lambda start: (tf.data.Dataset.from_tensor_slices((x, y)).repeat()
                      .batch(64, drop_remainder=True).skip(start))
evaluation = tf.data.Dataset.from_tensor_slices((x[:200], y[:200])).batch(64)

def run(strategy, clip_norm):
  def model():
    keras.utils.set_random_seed(3)
    return keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(4)])
  task = ClassificationTask(model, lambda: keras.optimizers.SGD(0.5), clip_norm=clip_norm)
  trainer = Trainer(task, tempfile.mkdtemp(), train_steps=40, log_every=5,
                    strategy=strategy, progress=False)
  result = trainer.fit(data, evaluation)
  return {"replicas": trainer.strategy.num_replicas_in_sync,
          "losses": [o["loss/total"] for _, o in trainer.history["train"]],
          "grad_norms": [o.get("charts/grad_norm") for _, o in trainer.history["train"]],
          "eval_loss": result["eval"]["loss"],
          "weights": [w.numpy().ravel().tolist() for w in task.model.weights]}

print(json.dumps({name: {"single": run("default", clip), "mirrored": run("mirrored", clip)}
                  for name, clip in (("none", None), ("0.5", 0.5))}))
"""


@pytest.fixture(scope="module")
def runs():
    """Both clip settings, single device and mirrored, from one fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("clip_norm", ["none", "0.5"])
def test_mirrored_matches_single_device(runs, clip_norm):
    single, mirrored = runs[clip_norm]["single"], runs[clip_norm]["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    assert single["losses"][-1] < 0.7 * single["losses"][0]  # it did learn
    if clip_norm != "none":  # clipping was active, and both saw the same global norm
        assert max(single["grad_norms"]) > float(clip_norm)
        np.testing.assert_allclose(mirrored["grad_norms"], single["grad_norms"], rtol=1e-4)
    np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=1e-4, atol=1e-5)
    assert mirrored["eval_loss"] == pytest.approx(single["eval_loss"], rel=1e-4)
    for a, b in zip(mirrored["weights"], single["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

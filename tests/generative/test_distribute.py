"""The VAE and the GAN (with d_steps > 1) train under MirroredStrategy on two logical CPUs.

Logical devices must be configured before TensorFlow starts, so each run is a
fresh interpreter that prints JSON. The replicas draw their own noise, so the
runs are not compared with a single device number for number (the engine's own
test, tests/engine/test_distribute.py, does that); they must run on both
replicas and count their updates right.
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SCRIPT = r"""
import json, sys, tempfile
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from apps import train_gan, train_vae

common = dict(train_steps=6, log_every=2, eval_every=3, strategy="mirrored", progress=False)
if sys.argv[1] == "gan":
    metrics = train_gan.run(tempfile.mkdtemp(), dataset="digits", model="dcgan", latent_dim=4,
                            dcgan_filters=4, batch_size=16, d_steps=2, fid_samples=20,
                            fid_cache_dir=tempfile.mkdtemp(), **common)
else:
    metrics = train_vae.run(tempfile.mkdtemp(), dataset="digits", hidden_units=["8"],
                            batch_size=32, iwae_k=10, iwae_examples=8, fid=False, **common)
print(json.dumps(metrics))
"""


def _mirrored(app):
    """The metrics of a tiny run of `app` (gan or vae) on two replicas, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, app],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_gan_with_several_d_steps_trains_on_two_replicas():
    gan = _mirrored("gan")
    assert gan["num_replicas"] == 2
    # Six iterations of 2 D updates and 1 G update each.
    assert (gan["global_step"], gan["d_updates"], gan["g_updates"]) == (6, 12, 6)
    assert gan["fid_classifier"] > gan["fid_real_floor"] >= 0


def test_vae_trains_on_two_replicas():
    vae = _mirrored("vae")
    assert vae["num_replicas"] == 2 and vae["global_step"] == 6
    assert vae["rate"] >= 0 and vae["distortion"] > 0
    assert 0 < vae["nll_nats"] < -vae["elbo"] + 1.0  # the IWAE bound is about as tight or tighter

"""The VAE and the GAN (with d_steps > 1) train under MirroredStrategy on two logical CPUs.

Logical devices must be configured before TensorFlow starts, so the runs happen
in a fresh interpreter that prints JSON: the GAN, then the VAE in the same
process (a second training must reuse the strategy, see `mp.engine.make_strategy`).
The replicas draw their own noise, so the runs are not compared with a single
device number for number (tests/engine/test_distribute.py does that for the
engine); they must run on both replicas and count their updates right.
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
from mp.generative import fid

# The FID path with a tiny classifier (as tests/conftest.py's tiny_fid_cache): the replicas
# are under test here, not the classifier, whose default trains for 30 epochs.
load = fid.load_extractor
fid.load_extractor = lambda *a, **k: load(*a, **k, filters=(2, 4), dense_units=8, epochs=1)

common = dict(train_steps=6, log_every=2, eval_every=3, strategy="mirrored", progress=False)
gan = train_gan.run(tempfile.mkdtemp(), dataset="digits", model="dcgan", latent_dim=4,
                    dcgan_filters=4, batch_size=16, d_steps=2, fid_samples=20,
                    fid_cache_dir=tempfile.mkdtemp(), **common)
vae = train_vae.run(tempfile.mkdtemp(), dataset="digits", hidden_units=["8"], batch_size=32,
                    iwae_k=10, iwae_examples=8, fid=False, **common)
print(json.dumps({"gan": gan, "vae": vae}))
"""


def test_gan_then_vae_train_on_two_replicas_in_one_process():
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs = json.loads(out.stdout.strip().splitlines()[-1])
    gan, vae = runs["gan"], runs["vae"]
    assert gan["num_replicas"] == 2 and vae["num_replicas"] == 2
    # Six iterations of 2 D updates and 1 G update each.
    assert (gan["global_step"], gan["d_updates"], gan["g_updates"]) == (6, 12, 6)
    assert gan["fid_classifier"] > gan["fid_real_floor"] >= 0
    assert vae["global_step"] == 6
    assert vae["rate"] >= 0 and vae["distortion"] > 0
    assert 0 < vae["nll_nats"] < -vae["elbo"] + 1.0  # the IWAE bound is about as tight or tighter

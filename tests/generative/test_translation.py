"""Tests of mp/generative/translation.py: losses by hand, the PatchGAN's patch, cycles, data,
the step on dict batches, the reports, and the app in process (pix2pix, resumed).

No subprocess run: CycleGAN's app run costs ~20 s of CPU (four nets to trace); its path
is run by `python -m apps.train_translation --flagfile=flags/smoke_cyclegan.cfg`."""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.generative import fid
from mp.generative import translation as tr

TINY_CLASSIFIER = {"filters": (2, 4), "dense_units": 8, "epochs": 1}


def _pointwise(scale, shift, name, channels=1):
    """A 1x1 convolution `x -> scale * x + shift` (a hand-built generator or critic)."""
    x = keras.Input((None, None, channels))
    layer = keras.layers.Conv2D(1, 1, name=f"{name}_conv")
    model = keras.Model(x, layer(x), name=name)
    kernel = np.full((1, 1, channels, 1), scale, np.float32)
    layer.set_weights([kernel, np.array([shift], np.float32)])
    return model


# --- losses by hand ---------------------------------------------------------------


def test_patch_losses_by_hand():
    # One image, 2x2 patches. softplus(0) = log 2, softplus(log 3) = log 4,
    # softplus(-log 3) = log(4/3).
    l3 = math.log(3.0)
    real = tf.constant([[[[0.0], [l3]], [[l3], [0.0]]]])
    fake = tf.constant([[[[0.0], [-l3]], [[0.0], [-l3]]]])
    # D, per patch: softplus(-real) + softplus(fake)
    #   (0, 0):    log 2 + log 2           (0, 1): log(4/3) + log(4/3)
    #   (1, 0): log(4/3) + log 2           (1, 1):    log 2 + log(4/3)
    # mean = (4 log 2 + 4 log(4/3)) / 4 = log 2 + log(4/3) = log(8/3)
    np.testing.assert_allclose(tr.patch_discriminator_loss(real, fake), [math.log(8 / 3)], 1e-6)
    # G, per patch softplus(-fake): log 2, log 4, log 2, log 4 -> mean (2 log 2 + 2 log 4) / 4
    #   = 3/2 log 2
    np.testing.assert_allclose(tr.patch_generator_loss(fake), [1.5 * math.log(2)], 1e-6)


def test_lsgan_losses_by_hand():
    # Two images of two patches. Image 0: real (1, 0.5), fake (0, 0.5);
    # image 1: real (0, 0), fake (1, 1).
    real = tf.constant([[1.0, 0.5], [0.0, 0.0]])
    fake = tf.constant([[0.0, 0.5], [1.0, 1.0]])
    # D, per patch 1/2 [(r - 1)^2 + f^2]: image 0: 1/2 (0 + 0) = 0, 1/2 (0.25 + 0.25) = 0.25
    #   -> 0.125; image 1: 1/2 (1 + 1) = 1 twice -> 1.
    np.testing.assert_allclose(tr.lsgan_discriminator_loss(real, fake), [0.125, 1.0])
    # G, per patch (f - 1)^2: image 0: 1, 0.25 -> 0.625; image 1: 0, 0 -> 0.
    np.testing.assert_allclose(tr.lsgan_generator_loss(fake), [0.625, 0.0])


def test_pix2pix_generator_loss_by_hand():
    # G(a) = sigmoid(0) = 0.5 everywhere (zero kernel); D's logits 0 everywhere.
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid")
    generator = keras.Sequential([keras.Input((2, 2, 1)), conv])
    conv.set_weights([np.zeros((1, 1, 1, 1)), np.zeros(1)])
    game = tr.Pix2Pix(generator, _pointwise(0.0, 0.0, "d", channels=2), l1_weight=100.0)
    batch = {"a": tf.zeros([1, 2, 2, 1]), "b": tf.constant([[[[0.0], [1.0]], [[1.0], [0.75]]]])}
    losses = {k: float(v) for k, v in game.generator_losses(batch).items()}
    # adversarial: softplus(-0) = log 2 on every patch -> log 2 = 0.693147
    # L1: |0 - .5|, |1 - .5|, |1 - .5|, |.75 - .5| = .5, .5, .5, .25 -> mean 1.75 / 4 = 0.4375
    # total: log 2 + 100 * 0.4375 = 44.443147
    assert losses["loss/adversarial"] == pytest.approx(math.log(2), abs=1e-6)
    assert losses["loss/l1"] == pytest.approx(0.4375, abs=1e-6)
    assert losses["loss/generator"] == pytest.approx(math.log(2) + 43.75, abs=1e-4)
    # L1 alone: the adversarial term is reported but weighs nothing.
    game.adversarial_weight = 0.0
    assert float(game.generator_losses(batch)["loss/generator"]) == pytest.approx(43.75, 1e-5)


def _cyclegan(g, f, score):
    """A CycleGAN of hand-built generators and two critics answering `score` everywhere."""
    return tr.CycleGAN(g, f, _pointwise(0.0, score, "da"), _pointwise(0.0, score, "db"))


def test_cycle_loss_vanishes_for_inverse_generators():
    # G = F = (x -> 1 - x): F(G(a)) = 1 - (1 - a) = a, so the cycle term is 0 whatever a is.
    rng = np.random.default_rng(0)
    batch = {k: tf.constant(rng.uniform(size=(3, 4, 4, 1)), tf.float32) for k in "ab"}
    game = _cyclegan(_pointwise(-1.0, 1.0, "g"), _pointwise(-1.0, 1.0, "f"), score=0.5)
    losses = {k: float(v) for k, v in game.generator_losses(batch).items()}
    assert losses["loss/cycle"] == pytest.approx(0.0, abs=1e-6)
    # adversarial: (0.5 - 1)^2 for each of the two critics = 0.25 + 0.25 = 0.5
    assert losses["loss/adversarial"] == pytest.approx(0.5, abs=1e-6)
    # identity: mean |G(b) - b| + mean |F(a) - a| = mean |1 - 2b| + mean |1 - 2a|
    identity = np.mean(np.abs(1 - 2 * batch["b"].numpy())) + np.mean(np.abs(1 - 2 * batch["a"]))
    assert losses["loss/identity"] == pytest.approx(identity, abs=1e-5)
    assert losses["loss/generator"] == pytest.approx(0.5 + 5.0 * identity, abs=1e-4)
    # Not inverse: G = x / 2, F = identity: F(G(a)) - a = -a / 2, G(F(b)) - b = -b / 2.
    halving = _cyclegan(_pointwise(0.5, 0.0, "g"), _pointwise(1.0, 0.0, "f"), score=1.0)
    cycle = float(halving.generator_losses(batch)["loss/cycle"])
    assert cycle == pytest.approx(np.mean(batch["a"]) / 2 + np.mean(batch["b"]) / 2, abs=1e-5)


def test_cyclegan_discriminator_step_loss_by_hand():
    # Critics answer 0.5 everywhere: per critic 1/2 [(0.5 - 1)^2 + 0.5^2] = 0.25, two: 0.5.
    game = _cyclegan(_pointwise(1.0, 0.0, "g"), _pointwise(1.0, 0.0, "f"), score=0.5)
    game.compile(keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0))
    batch = {k: tf.random.uniform([2, 4, 4, 1], seed=1) for k in "ab"}
    outputs = game.discriminator_step(batch)
    assert float(outputs["loss/discriminator"]) == pytest.approx(0.5, abs=1e-6)
    assert float(outputs["metrics/d_real"]) == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(ValueError, match="distinct names"):
        tr.CycleGAN(*(_pointwise(1.0, 0.0, "same"),) * 2, *(_pointwise(1.0, 0.0, "d"),) * 2)


# --- the PatchGAN's patch ------------------------------------------------------------


def _field_of_one_logit(model, size, channels):
    """Rows and columns of the input that move the middle logit (a gradient probe)."""
    x = tf.Variable(tf.random.normal([1, size, size, channels], seed=2))
    with tf.GradientTape() as tape:
        logits = model(x, training=False)
        middle = logits.shape[1] // 2
        chosen = logits[0, middle, middle, 0]
    moved = np.abs(tape.gradient(chosen, x).numpy()[0]).sum(axis=-1) > 0
    rows, cols = np.nonzero(moved.any(axis=1))[0], np.nonzero(moved.any(axis=0))[0]
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1, moved


@pytest.mark.parametrize("num_downsamples", [1, 2])
def test_patch_receptive_field_by_gradient_probe(num_downsamples):
    # Formula: n = 1: 1 -> 4 -> 7 -> 2 * 7 + 2 = 16; n = 2: 2 * 16 + 2 = 34. The leaky ReLU
    # passes some gradient everywhere, so every pixel of the field moves the logit.
    keras.utils.set_random_seed(0)
    expected = tr.patch_receptive_field(num_downsamples)
    assert expected == {1: 16, 2: 34}[num_downsamples]
    model = tr.patch_discriminator((None, None, 2), filters=2, num_downsamples=num_downsamples)
    height, width, moved = _field_of_one_logit(model, 48, 2)
    assert height == width == expected
    assert moved[moved.any(axis=1)][:, moved.any(axis=0)].all()  # a full square
    # The paper's discriminator (three stride-2 convolutions) sees 70x70 patches.
    assert tr.patch_receptive_field(3) == 70


def test_instance_norm_makes_each_logit_see_the_whole_image():
    keras.utils.set_random_seed(0)
    model = tr.patch_discriminator((None, None, 1), filters=2, normalization="instance")
    _, _, moved = _field_of_one_logit(model, 48, 1)
    assert moved.all()  # the statistics of the whole image enter every logit


# --- networks ---------------------------------------------------------------------


def test_unet_generator_reuses_chapter_3_with_instance_norms():
    batch = tr.unet_generator((8, 8, 1), filters=(2, 4))
    instance = tr.unet_generator((8, 8, 1), filters=(2, 4), normalization="instance")
    kinds = lambda m, k: [layer.name for layer in m.layers if isinstance(layer, k)]
    assert kinds(batch, keras.layers.BatchNormalization) == ["down0_bn", "bottom_bn", "up0_bn"]
    assert kinds(instance, keras.layers.GroupNormalization) == ["down0_in", "bottom_in", "up0_in"]
    assert not kinds(instance, keras.layers.BatchNormalization)
    norms = [l for l in instance.layers if isinstance(l, keras.layers.GroupNormalization)]
    assert [layer.groups for layer in norms] == [2, 4, 2]  # -1 became one group per channel
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype(np.float32)
    y = instance(x).numpy()
    assert y.shape == (2, 8, 8, 1) and (0 < y).all() and (y < 1).all()
    # Instance norm: an image's output does not depend on the other images of the batch.
    alone, together = instance(x[:1], training=True), instance(x, training=True)[:1]
    np.testing.assert_allclose(alone, together, atol=1e-6)


# --- the step on dict batches ------------------------------------------------------


def _tiny_pix2pix(d_steps):
    keras.utils.set_random_seed(0)
    game = tr.make_pix2pix((8, 8, 1), unet_filters=(2, 4), patch_filters=2, d_steps=d_steps)
    game.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2))
    return game


def test_adversarial_step_splits_pairs_as_discriminator_steps_by_hand():
    rng = np.random.default_rng(0)
    batch = {k: tf.constant(rng.uniform(size=(8, 8, 8, 1)), tf.float32) for k in "ab"}
    game, by_hand = _tiny_pix2pix(2), _tiny_pix2pix(1)
    outputs = tf.function(game.adversarial_step)(batch)
    halves = [{k: v[i : i + 4] for k, v in batch.items()} for i in (0, 4)]
    d_outputs = [by_hand.discriminator_step(half) for half in halves]
    g_outputs = by_hand.generator_update(halves[1])
    expected = np.mean([float(o["loss/discriminator"]) for o in d_outputs])
    assert float(outputs["loss/discriminator"]) == pytest.approx(expected, rel=1e-4)
    assert float(outputs["loss/l1"]) == pytest.approx(float(g_outputs["loss/l1"]), rel=1e-4)
    for mine, theirs in zip(game.generator.weights, by_hand.generator.weights):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6)
    assert (int(game.d_optimizer.iterations), int(game.g_optimizer.iterations)) == (2, 1)


# --- data ------------------------------------------------------------------------------


def test_edge_maps_by_hand():
    # Columns 0, 1 dark, 2, 3 bright. Each column's vertical smoothing is 1 + 2 + 1 = 4 times
    # its value; g_x at column c = 4 (x[c + 1] - x[c - 1]) with replicated borders:
    #   c = 0: 4 (0 - 0) = 0, c = 1: 4 (1 - 0) = 4, c = 2: 4 (1 - 0) = 4, c = 3: 4 (1 - 1) = 0
    # and g_y = 0: edges in columns 1 and 2.
    image = np.tile([0.0, 0.0, 1.0, 1.0], (4, 1))[np.newaxis]
    np.testing.assert_array_equal(tr.edge_maps(image)[0, :, :, 0], np.tile([0, 1, 1, 0], (4, 1)))
    assert not tr.edge_maps(image, threshold=4.0).any()  # 4 is not above 4


def _batches(data, count):
    return [{k: v.numpy() for k, v in batch.items()} for batch in data.take(count)]


@pytest.mark.parametrize("paired", [True, False])
def test_pairs_dataset_resumes_and_keeps_pairs(paired):
    # Image i is filled with i / 255 (a's) or (100 + i) / 255 (b's): batches name their rows.
    a = (np.arange(7, dtype=np.float32) / 255)[:, None, None, None] * np.ones((1, 2, 2, 1))
    b = a[: 7 if paired else 5] + 100 / 255
    ids = lambda x: np.round(x[:, 0, 0, 0] * 255).astype(int)
    whole = _batches(tr.pairs_dataset(a, b, 3, paired=paired, seed=4), 6)
    resumed = _batches(tr.pairs_dataset(a, b, 3, paired=paired, seed=4, skip_batches=4), 2)
    for mine, theirs in zip(resumed, whole[4:]):
        np.testing.assert_array_equal(mine["a"], theirs["a"])
        np.testing.assert_array_equal(mine["b"], theirs["b"])
    a_ids = np.concatenate([ids(batch["a"]) for batch in whole])
    b_ids = np.concatenate([ids(batch["b"]) - 100 for batch in whole])
    assert sorted(a_ids[:7]) == list(range(7))  # each epoch is a permutation
    assert (a_ids == b_ids).all() == paired
    if not paired:
        assert sorted(b_ids[:5]) == list(range(5))


# --- reports and the app --------------------------------------------------------------


def test_reports_of_identity_generators(tmp_path):
    cache = dict(cache_dir=str(tmp_path), **TINY_CLASSIFIER)
    classifier = fid.load_classifier("digits", **cache)
    images = tr.class_images("digits", "test", 3)[:40]
    others = tr.class_images("digits", "test", 8)[:40]
    identity = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Identity()])
    labels = np.full(40, 3)
    report = tr.pix2pix_report(identity, images, images, labels, classifier, "digits", **cache)
    assert report["l1"] == 0.0 and report["num_pairs"] == 40
    assert report["classifier_accuracy"] == report["target_accuracy"]
    assert abs(report["fid_classifier"]) < 1e-6  # the same features on both sides
    cycle = tr.cyclegan_report(
        identity, identity, images, others, (3, 8), classifier, "digits", **cache
    )
    # Identity translates nothing: the rate of assignment to the target is the inputs' own.
    assert cycle["domain_rate_ab"] == cycle["source_rate_ab"]
    assert cycle["cycle_error_a"] == cycle["cycle_error_b"] == 0.0
    predicted = tr.predicted_classes(classifier, images)
    assert cycle["source_rate_ab"] == pytest.approx(np.mean(predicted == 8))


def test_app_in_process_resumes_with_both_optimizers(tmp_path, tiny_fid_cache, monkeypatch):
    from apps import train_translation

    real_load = fid.load_classifier
    tiny_load = lambda *a, **k: real_load(*a, **(TINY_CLASSIFIER | k))
    monkeypatch.setattr(fid, "load_classifier", tiny_load)
    tiny = dict(dataset="digits", unet_filters=["2", "4"], patch_filters=2, batch_size=8)
    tiny |= dict(eval_examples=20, fid_cache_dir=tiny_fid_cache, progress=False, d_steps=2)
    model_dir = str(tmp_path / "pix2pix")
    metrics = train_translation.run(model_dir, train_steps=2, **tiny)
    for name in ("model.keras", "discriminator.keras", "translations.png", "metrics.json"):
        assert os.path.exists(os.path.join(model_dir, name)), name
    assert 0 <= metrics["classifier_accuracy"] <= 1 and metrics["l1"] > 0
    # Resumed: the restored optimizers count on (fresh ones would end at 2 and 1).
    resumed = train_translation.run(model_dir, train_steps=3, **tiny)
    assert resumed["resumed_from_step"] == 2
    assert (resumed["d_updates"], resumed["g_updates"]) == (6, 3)
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f)["global_step"] == 3
    with pytest.raises(ValueError, match="Received: model='unet'"):
        train_translation.run(str(tmp_path / "bad"), model="unet", **tiny)
    assert not (tmp_path / "bad").exists()

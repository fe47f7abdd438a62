"""mp.cnn.transfer: bases, weights, preprocessing, freezing and the two training phases."""

import os
import urllib.error

import keras
import numpy as np
import pytest
import tensorflow as tf

import mp.cnn
from mp.cnn import transfer
from mp.engine import Trainer, precision


@pytest.fixture(scope="module")
def vgg_base():
    return transfer.build_base("vgg16", "none", (32, 32, 3))


@pytest.fixture(scope="module")
def resnet_base():
    return transfer.build_base("resnet50", "none", (32, 32, 3))


def _trainable_names(model):
    return {v.path for v in model.trainable_variables}


def test_vgg16_base_shape_and_parameter_count(vgg_base):
    # 13 conv layers of VGG16: 14,714,688 parameters without the top (Keras' documented count).
    assert vgg_base.count_params() == 14_714_688
    assert vgg_base.output_shape == (None, 1, 1, 512)  # 32 / 2**5 = 1
    model = transfer.transfer_model(vgg_base, 10, dropout=0.5)
    assert model.output_shape == (None, 10)
    assert model.count_params() == 14_714_688 + 512 * 10 + 10


def test_freeze_leaves_only_the_head_trainable(vgg_base):
    model = transfer.transfer_model(vgg_base, 10)
    transfer.freeze(vgg_base)
    # The head: one 512x10 kernel and a bias.
    assert [tuple(v.shape) for v in model.trainable_variables] == [(512, 10), (10,)]


def test_unfreeze_top_vgg16_block5(vgg_base):
    model = transfer.transfer_model(vgg_base, 10)
    transfer.freeze(vgg_base)
    names = transfer.unfreeze_top(vgg_base, from_layer="block5_conv1")
    assert names == ["block5_conv1", "block5_conv2", "block5_conv3"]
    expected = {v.path for n in names for v in vgg_base.get_layer(n).weights}
    expected |= {v.path for v in model.get_layer("logits").weights}
    assert _trainable_names(model) == expected
    # n_layers counts weight layers from the top: the same three.
    transfer.freeze(vgg_base)
    assert transfer.unfreeze_top(vgg_base, 3) == names
    assert _trainable_names(model) == expected


def test_unfreeze_top_keeps_batch_norm_frozen(resnet_base):
    names = transfer.unfreeze_top(resnet_base, from_layer="conv5_block1_1_conv")
    assert names[0] == "conv5_block1_1_conv" and names[-1] == "conv5_block3_3_conv"
    bn = [l for l in resnet_base.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert bn and not any(l.trainable for l in bn)
    assert not any("_bn" in v.path for v in resnet_base.trainable_variables)
    # conv5 has 3 blocks x 3 convs + the shortcut conv = 10 conv layers, kernel and bias each.
    assert len(resnet_base.trainable_variables) == 20
    # Inference mode: training=True gives the same output as training=False and leaves
    # the moving statistics unchanged.
    layer = resnet_base.get_layer("conv5_block1_1_bn")
    before = layer.moving_mean.numpy().copy()
    x = tf.random.stateless_normal((2, 32, 32, 3), seed=(1, 2))
    np.testing.assert_allclose(
        resnet_base(x, training=True).numpy(), resnet_base(x, training=False).numpy(), atol=1e-5
    )
    np.testing.assert_array_equal(layer.moving_mean.numpy(), before)


def test_unfreeze_top_arguments(vgg_base):
    with pytest.raises(ValueError, match="exactly one"):
        transfer.unfreeze_top(vgg_base)
    with pytest.raises(ValueError, match="no layer"):
        transfer.unfreeze_top(vgg_base, from_layer="block9_conv1")
    with pytest.raises(ValueError, match=r"n_layers must be in \[1, 13\]"):
        transfer.unfreeze_top(vgg_base, 14)


def _tiny_data(num_classes=3, n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
    y = rng.integers(0, num_classes, size=n).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y))


def _fit_two_phases(model, base, directory, **kwargs):
    """`fit_two_phases` on `_tiny_data`: batches of 8, the whole set as evaluation data."""
    data = _tiny_data()
    return transfer.fit_two_phases(
        model,
        base,
        str(directory),
        train_data=lambda start: data.repeat().batch(8).skip(start),
        eval_data=data.batch(8),
        **kwargs,
    )


def test_two_phases_optimizer_sees_only_unfrozen_variables(tmp_path):
    base = mp.cnn.get_model(
        "classic_cnn", (8, 8, 1), num_classes=None, filters=(4, 8), dense_units=16
    )
    model = transfer.transfer_model(base, 3)
    frozen = base.get_layer("conv1").kernel.numpy().copy()
    optimizers, steps = [], []

    def make_optimizer(learning_rate, train_steps):
        optimizers.append(keras.optimizers.Adam(learning_rate))
        steps.append(train_steps)
        return optimizers[-1]

    results = _fit_two_phases(
        model,
        base,
        tmp_path,
        make_optimizer=make_optimizer,
        head_steps=3,
        head_learning_rate=1e-2,
        finetune_steps=2,
        finetune_learning_rate=1e-3,
        unfreeze=2,
        progress=False,
    )
    assert results["unfrozen"] == ["conv2", "dense"]
    head = {v.path for v in model.get_layer("logits").weights}
    phase2 = head | {v.path for n in ("conv2", "dense") for v in base.get_layer(n).weights}
    # Adam keeps m and v per variable it was built for: phase 1 the head only,
    # phase 2 head + conv2 + dense; conv1 never.
    assert {v.path for v in optimizers[0]._trainable_variables} == head
    assert {v.path for v in optimizers[1]._trainable_variables} == phase2
    assert float(optimizers[1].learning_rate) == pytest.approx(1e-3)
    np.testing.assert_array_equal(base.get_layer("conv1").kernel.numpy(), frozen)
    assert results["phase1"]["global_step"] == 3 and results["phase2"]["global_step"] == 2
    assert steps == [3, 2] and results["global_step"] == 5
    assert results["eval"] == results["phase2"]["eval"]
    for phase in ("phase1", "phase2"):
        assert os.path.isdir(tmp_path / phase / "ckpt")
    # One step axis: each phase logs at its end (log_every is at most its steps), and
    # phase 2's step 2 comes after phase 1's three steps.
    assert [step for step, _ in results["history"]["train"]] == [3, 5]


def test_two_phases_through_the_callers_trainers_with_clipping(tmp_path):
    """`make_trainer` sets the Trainers up (as the app's runner does); `clip_norm` reaches
    each phase's task; `finetune_steps=0` is phase 1 alone."""
    base = mp.cnn.get_model(
        "classic_cnn", (8, 8, 1), num_classes=None, filters=(4, 8), dense_units=16
    )
    model = transfer.transfer_model(base, 3)
    made = []

    def make_trainer(task, directory, train_steps):
        made.append((task, os.path.basename(directory), train_steps))
        return Trainer(task, directory, train_steps=train_steps, log_every=1, progress=False)

    phase1_only = dict(
        make_optimizer=lambda learning_rate, train_steps: keras.optimizers.SGD(learning_rate),
        head_steps=2,
        head_learning_rate=0.1,
        finetune_steps=0,
        finetune_learning_rate=0.01,
        unfreeze=1,
        make_trainer=make_trainer,
    )
    results = _fit_two_phases(model, base, tmp_path, clip_norm=0.5, **phase1_only)
    [(task, directory, train_steps)] = made
    assert (directory, train_steps, task.clip_norm) == ("phase1", 2, 0.5)
    assert results["phase2"] is None and results["unfrozen"] == []
    assert results["eval"] == results["phase1"]["eval"] and results["global_step"] == 2
    with pytest.raises(ValueError, match="make_trainer, not with it"):
        _fit_two_phases(model, base, tmp_path / "other", log_every=1, **phase1_only)
    assert len(made) == 1 and not (tmp_path / "other").exists()


def _old_few_labels(labels, per_class):
    """The copy apps/finetune.py had: the first `per_class` of each class's permutation."""
    rng = np.random.default_rng(20190913)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def test_few_labels_are_the_validation_holdouts_first_examples():
    from mp.data.arrays import holdout_mask

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, size=203)  # classes of unequal sizes
    counts = np.bincount(labels)
    for per_class in (1, 3, 17, int(counts.min())):
        chosen = transfer.few_labels(labels, per_class)
        np.testing.assert_array_equal(chosen, _old_few_labels(labels, per_class))
        assert np.all(np.bincount(labels[chosen]) == per_class)
    # The hold-out's examples first: a larger hold-out of each class contains them.
    held_out = holdout_mask(labels, 0.3)
    assert held_out[transfer.few_labels(labels, int(0.3 * counts.min()))].all()
    with pytest.raises(ValueError, match=f"class 0 has only {counts[0]}"):
        transfer.few_labels(labels, int(counts.max()) + 1)
    with pytest.raises(ValueError, match="labels_per_class must be a positive integer"):
        transfer.few_labels(labels, 0)


def test_few_label_data_digits():
    train, test, count = transfer.few_label_data(
        "digits", "mp:classic_cnn", 12, 3, batch_size=8, seed=0
    )
    assert count == 30
    x, y = next(iter(train(0)))
    assert x.shape == (8, 12, 12, 1) and x.dtype == tf.float32 and y.dtype == tf.int32
    # From any step on, the batches of an uninterrupted run (resumption).
    sixth = list(train(0).take(6))[5]
    later = next(iter(train(5)))
    np.testing.assert_array_equal(sixth[0].numpy(), later[0].numpy())
    np.testing.assert_array_equal(sixth[1].numpy(), later[1].numpy())
    x, y = next(iter(test))
    assert x.shape == (250, 12, 12, 1)
    assert sum(int(b[1].shape[0]) for b in test) == 450  # digits' test split
    vgg_train, _, _ = transfer.few_label_data("digits", "vgg16", 32, 3, batch_size=8)
    assert next(iter(vgg_train(0)))[0].shape == (8, 32, 32, 3)  # grey repeated to RGB
    with pytest.raises(ValueError, match="batch_size 31 exceeds the 30 labelled examples"):
        transfer.few_label_data("digits", "mp:classic_cnn", 8, 3, batch_size=31)


def test_input_shape_and_default_unfreeze_of_a_base():
    assert transfer.input_shape_of("vgg16", 32, 1) == (32, 32, 3)
    assert transfer.input_shape_of("mp:classic_cnn", 8, 1) == (8, 8, 1)
    assert transfer.default_unfreeze("vgg16") == "block5_conv1"
    assert transfer.default_unfreeze("resnet50") == "conv5_block1_1_conv"
    assert transfer.default_unfreeze("mp:vgg16") == 1  # the package's VGG: its last layer


def test_phase1_changes_only_the_head():
    base = mp.cnn.get_model(
        "classic_cnn", (8, 8, 1), num_classes=None, filters=(4, 8), dense_units=16
    )
    model = transfer.transfer_model(base, 3)
    transfer.freeze(base)
    before = [w.numpy().copy() for w in base.weights]
    head_before = model.get_layer("logits").kernel.numpy().copy()
    x, y = next(iter(_tiny_data().batch(8)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=model(x))
        )
    grads = tape.gradient(loss, model.trainable_variables)
    keras.optimizers.SGD(0.1).apply_gradients(zip(grads, model.trainable_variables))
    for b, w in zip(before, base.weights):
        np.testing.assert_array_equal(w.numpy(), b)
    assert not np.allclose(model.get_layer("logits").kernel.numpy(), head_before)


def test_preprocess_is_the_familys():
    assert transfer.preprocess("vgg16") is keras.applications.vgg16.preprocess_input
    assert transfer.preprocess("resnet50") is keras.applications.resnet50.preprocess_input
    with pytest.raises(ValueError, match="Received: name='vgg19'"):
        transfer.preprocess("vgg19")


def test_resize_and_preprocess_grey_uint8_to_caffe_bgr():
    images = np.full((2, 8, 8, 1), 200, dtype=np.uint8)
    out = transfer.resize_and_preprocess(images, 32, "vgg16").numpy()
    assert out.shape == (2, 32, 32, 3) and out.dtype == np.float32
    # Caffe mode: RGB -> BGR, minus the ImageNet means (B, G, R) = (103.939, 116.779, 123.68).
    np.testing.assert_allclose(
        out[0, 0, 0], [200 - 103.939, 200 - 116.779, 200 - 123.68], atol=1e-3
    )


def test_resize_and_preprocess_standardised_input_and_mp_family():
    mean, std = 0.25, 0.5
    raw = np.random.default_rng(0).integers(0, 256, size=(3, 8, 8, 1)).astype("float32")
    standardised = (raw / 255.0 - mean) / std
    from_raw = transfer.resize_and_preprocess(raw, 16, "resnet50").numpy()
    from_std = transfer.resize_and_preprocess(
        standardised, 16, "resnet50", mean=mean, std=std, standardized=True
    ).numpy()
    np.testing.assert_allclose(from_std, from_raw, atol=1e-3)
    # mp: bases keep one channel and get (x / 255 - mean) / std; same size: no resampling.
    out = transfer.resize_and_preprocess(raw, 8, "mp:classic_cnn", mean=mean, std=std).numpy()
    assert out.shape == (3, 8, 8, 1)
    np.testing.assert_allclose(out, standardised, atol=1e-5)
    with pytest.raises(ValueError, match="mean and a positive std"):
        transfer.resize_and_preprocess(raw, 8, "mp:classic_cnn")


def test_weights_file_round_trip_vgg16(vgg_base, tmp_path):
    path = str(tmp_path / "vgg.weights.h5")
    vgg_base.save_weights(path)
    loaded = transfer.build_base("vgg16", path, (32, 32, 3))
    for a, b in zip(vgg_base.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # A saved transfer model (base nested in it + head): the base's layers are found by name.
    keras_path = str(tmp_path / "transfer.keras")
    transfer.transfer_model(vgg_base, 10).save(keras_path)
    from_keras = transfer.build_base("vgg16", keras_path, (32, 32, 3))
    for a, b in zip(vgg_base.weights, from_keras.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        transfer.build_base("vgg16", str(tmp_path / "missing.h5"), (32, 32, 3))


def test_mp_base_from_saved_keras_model(tmp_path):
    saved = mp.cnn.get_model("classic_cnn", (8, 8, 1), 10, filters=(4, 8), dense_units=16)
    path = str(tmp_path / "model.keras")
    saved.save(path)
    base = transfer.build_base("mp:classic_cnn", path, (8, 8, 1))
    # The saved model without dropout and logits: it ends at the 16-unit dense features.
    assert base.output_shape == (None, 16)
    assert [l.name for l in base.layers if l.weights] == ["conv1", "conv2", "dense"]
    for name in ("conv1", "conv2", "dense"):
        for a, b in zip(saved.get_layer(name).weights, base.get_layer(name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="--image_size=8"):
        transfer.build_base("mp:classic_cnn", path, (16, 16, 1))
    with pytest.raises(ValueError, match="Unknown model"):
        transfer.build_base("mp:nope", "none", (8, 8, 1))


@pytest.mark.parametrize("saved_in, used_in", [("mixed_bfloat16", "float32"),
                                               ("float32", "mixed_bfloat16")])
def test_mp_base_computes_in_the_precision_of_the_run(tmp_path, saved_in, used_in):
    # model.keras records each layer's dtype policy; a base for a run under another
    # --precision must compute in the run's, with the saved (float32) weights.
    with precision.precision_scope(saved_in):
        saved = mp.cnn.get_model("classic_cnn", (8, 8, 1), 10, filters=(4, 8), dense_units=16)
    path = str(tmp_path / "model.keras")
    saved.save(path)
    with precision.precision_scope(used_in):
        base = transfer.build_base("mp:classic_cnn", path, (8, 8, 1))
    compute = "bfloat16" if used_in == "mixed_bfloat16" else "float32"
    assert {layer.compute_dtype for layer in base.layers[1:]} == {compute}
    assert base(np.zeros((2, 8, 8, 1), "float32")).dtype == compute
    for name in ("conv1", "conv2", "dense"):
        for a, b in zip(saved.get_layer(name).weights, base.get_layer(name).weights):
            assert b.dtype == "float32"
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_imagenet_fetch_failure_names_the_file(monkeypatch):
    """Keras wraps the failed fetch in a plain Exception; we turn it into one clear line."""
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        error = urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        raise Exception(f"URL fetch failure on https://storage.googleapis.com/...: None -- {error}")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(FileNotFoundError) as info:
        transfer.build_base("vgg16", "imagenet", (32, 32, 3))
    message = str(info.value)
    assert "\n" not in message
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "models/" in message and "--weights=" in message
    with pytest.raises(
        FileNotFoundError, match="resnet50_weights_tf_dim_ordering_tf_kernels_notop"
    ):
        transfer.build_base("resnet50", "imagenet", (32, 32, 3))

"""Multi-task learning: the groups, the weighted loss, heads that learn only their task."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.training import multitask as mt

INPUT_SHAPE = (8, 8, 1)
UNITS = 12


def _task(loss_weights, optimizer=None):
    keras.utils.set_random_seed(0)
    trunk = mt.make_trunk(INPUT_SHAPE, filters=(4, 6), units=UNITS)
    heads = {"class": mt.make_head(UNITS, 10, "head_class"), "group": mt.make_head(UNITS, 4, "g")}
    task = mt.MultiTaskTask(
        trunk,
        {t: heads[t] for t in loss_weights},
        loss_weights,
        optimizer or keras.optimizers.SGD(0.1),
    )
    task.build()
    return task


def _batch(seed=0, size=8):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(size, *INPUT_SHAPE)).astype(np.float32)
    classes = rng.integers(0, 10, size=size)
    table = mt.group_table(mt.FASHION_GROUPS)
    labels = {"class": classes.astype(np.int32), "group": table[classes].astype(np.int32)}
    return tf.constant(images), {t: tf.constant(v) for t, v in labels.items()}


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


# --- groups --------------------------------------------------------------------


@pytest.mark.parametrize("groups", [mt.FASHION_GROUPS, mt.DIGIT_GROUPS], ids=["fashion", "digits"])
def test_groups_cover_the_ten_classes_exactly_once(groups):
    members = [c for classes in groups.values() for c in classes]
    assert sorted(members) == list(range(10))
    table = mt.group_table(groups)
    for index, classes in enumerate(groups.values()):
        assert all(table[c] == index for c in classes)


def test_fashion_groups_by_name():
    # Class names: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal,
    # 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot; groups in order top, bottom, shoe, bag.
    table = mt.group_table(mt.FASHION_GROUPS)
    assert list(mt.FASHION_GROUPS) == ["top", "bottom", "shoe", "bag"]
    assert table.tolist() == [0, 1, 0, 0, 0, 2, 0, 2, 3, 2]
    num_groups, parity = mt.derived_labels("digits")["group"]
    assert num_groups == 2 and parity.tolist() == [i % 2 for i in range(10)]


def test_group_table_rejects_overlaps_and_gaps():
    with pytest.raises(ValueError, match="class 1"):
        mt.group_table({"a": (0, 1), "b": (1, 2)}, num_classes=3)
    with pytest.raises(ValueError, match=r"\[2\] in none"):
        mt.group_table({"a": (0,), "b": (1,)}, num_classes=3)
    with pytest.raises(ValueError, match="dataset"):
        mt.derived_labels("cifar10")


def test_multitask_batches_derive_every_label_from_the_class():
    data = tf.data.Dataset.from_tensor_slices((tf.zeros([10, 1]), tf.range(10))).batch(10)
    tables = {t: table for t, (_, table) in mt.derived_labels("fashion_mnist").items()}
    _, labels = next(iter(mt.multitask_batches(data, tables)))
    assert labels["class"].numpy().tolist() == list(range(10))
    assert labels["group"].numpy().tolist() == [0, 1, 0, 0, 0, 2, 0, 2, 3, 2]


# --- the loss ------------------------------------------------------------------


def test_loss_is_the_weighted_sum_of_task_cross_entropies():
    weights = {"class": 0.3, "group": 2.0}
    task = _task(weights)
    images, labels = _batch()
    features = task.trunk(images).numpy()
    expected = {}
    for t in weights:  # CE_t = mean_i -log softmax(logits_i)[y_i], computed before the update
        logits = task.heads[t](features).numpy()
        expected[t] = -_log_softmax(logits)[np.arange(8), labels[t].numpy()].mean()
        expected[f"{t}_top1"] = np.mean(logits.argmax(axis=1) == labels[t].numpy())
    outputs = task.train_step((images, labels))
    for t in weights:
        np.testing.assert_allclose(outputs[f"loss/{t}"], expected[t], rtol=1e-5)
        np.testing.assert_allclose(outputs[f"metrics/{t}_top1"], expected[f"{t}_top1"])
    # L = 0.3 * CE_class + 2.0 * CE_group
    np.testing.assert_allclose(
        outputs["loss/total"], 0.3 * expected["class"] + 2.0 * expected["group"], rtol=1e-5
    )


def test_each_head_learns_from_its_own_task_scaled_by_its_weight():
    task = _task({"class": 0.3, "group": 2.0})
    with tf.GradientTape(persistent=True) as tape:
        cross_entropies, _ = task.losses(_batch(), training=True)
        total = 0.3 * cross_entropies["class"] + 2.0 * cross_entropies["group"]
    for t, other in (("class", "group"), ("group", "class")):
        head = task.heads[t].trainable_variables
        assert all(g is None for g in tape.gradient(cross_entropies[other], head))
        for g_total, g_own in zip(
            tape.gradient(total, head), tape.gradient(cross_entropies[t], head)
        ):
            np.testing.assert_allclose(g_total, task.loss_weights[t] * g_own, rtol=1e-5, atol=1e-7)
    trunk = task.trunk.trainable_variables
    for t in ("class", "group"):  # the trunk learns from both tasks
        assert all(g is not None for g in tape.gradient(cross_entropies[t], trunk))


def test_a_task_with_weight_zero_leaves_its_head_untouched():
    # AdamW decays every weight it is given: the head must not even be given to it.
    task = _task({"class": 1.0, "group": 0.0}, optimizer=keras.optimizers.AdamW(0.01, 0.5))
    before = {
        name: [v.numpy().copy() for v in model.weights]
        for name, model in (("trunk", task.trunk), *task.heads.items())
    }
    for seed in range(3):
        outputs = task.train_step(_batch(seed))
    assert np.isfinite(outputs["loss/group"])  # still monitored
    for name, model in (("trunk", task.trunk), *task.heads.items()):
        changed = [not np.array_equal(a, v.numpy()) for a, v in zip(before[name], model.weights)]
        assert all(changed) if name != "group" else not any(changed), name


def test_eval_step_returns_sums_per_task():
    task = _task({"class": 1.0, "group": 0.5})
    images, labels = _batch()
    outputs = task.eval_step((images, labels))
    logits = task.model(images)
    for t in ("class", "group"):
        ce = -_log_softmax(logits[t].numpy())[np.arange(8), labels[t].numpy()]
        np.testing.assert_allclose(outputs[f"loss/{t}"], ce.sum(), rtol=1e-5)
        correct = np.sum(logits[t].numpy().argmax(axis=1) == labels[t].numpy())
        assert float(outputs[f"metrics/{t}_top1"]) == correct
    np.testing.assert_allclose(
        outputs["loss"], outputs["loss/class"] + 0.5 * outputs["loss/group"], rtol=1e-6
    )
    assert float(outputs["count"]) == 8


def test_export_saves_all_heads(tmp_path):
    task = _task({"class": 1.0, "group": 1.0})
    images, _ = _batch()
    path = str(tmp_path / "multitask.keras")
    task.export(path)
    reloaded = keras.saving.load_model(path)(images)
    for t, logits in task.model(images).items():
        np.testing.assert_allclose(reloaded[t], logits, rtol=1e-5)


def test_make_task_starts_every_choice_of_tasks_from_the_same_weights():
    num_classes = {"class": 10, "group": 4}
    sgd = keras.optimizers.SGD
    both = mt.make_task(INPUT_SHAPE, num_classes, {"class": 1.0, "group": 0.5}, sgd, units=UNITS)
    alone = mt.make_task(INPUT_SHAPE, num_classes, {"group": 1.0}, sgd, units=UNITS)
    both.build()
    alone.build()
    assert both.tasks == ("class", "group") and alone.tasks == ("group",)
    # The single-task model is the multi-task one without the class head, weight for weight.
    expected = both.trunk.get_weights() + both.heads["group"].get_weights()
    assert len(alone.model.get_weights()) == len(expected)
    for a, b in zip(expected, alone.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="without heads: colour"):
        mt.make_task(INPUT_SHAPE, num_classes, {"colour": 1.0}, None, units=UNITS)


def _update_norm(clip_norm):
    """The global norm of one plain-SGD update (learning rate 1) and the reported norm."""
    keras.utils.set_random_seed(0)
    task = mt.make_task(
        INPUT_SHAPE,
        {"class": 10, "group": 4},
        {"class": 1.0, "group": 1.0},
        keras.optimizers.SGD(1.0),
        units=UNITS,
        clip_norm=clip_norm,
    )
    task.build()
    before = [v.numpy().copy() for v in task.trainable_variables]
    outputs = task.train_step(_batch())
    step = [v.numpy() - b for v, b in zip(task.trainable_variables, before)]
    return np.sqrt(sum(np.sum(d.astype(np.float64) ** 2) for d in step)), outputs


def test_clip_norm_bounds_the_update():
    # SGD with learning rate 1: the update is minus the gradient the optimizer was given,
    # so its global norm is the (clipped) gradient norm.
    free, outputs = _update_norm(None)
    assert free > 0.1  # the raw gradient is far longer than the clip below
    np.testing.assert_allclose(outputs["charts/grad_norm"], free, rtol=1e-4)
    clipped, outputs = _update_norm(0.01)
    np.testing.assert_allclose(clipped, 0.01, rtol=1e-4)
    np.testing.assert_allclose(outputs["charts/grad_norm"], free, rtol=1e-4)  # before clipping


def test_accuracy_figure_puts_the_models_side_by_side():
    accuracies = {"multi-task": {"class": 0.9, "group": 0.99}, "single-task": {"class": 0.8}}
    accuracies["single-task"]["group"] = 0.95
    figure = mt.accuracy_figure(accuracies, {"class": 1.0, "group": 0.5}, title="digits")
    (ax,) = figure.axes
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == [0.9, 0.99, 0.8, 0.95]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["class\n(w=1)", "group\n(w=0.5)"]
    assert ax.get_ylim()[0] == pytest.approx(0.75)  # 0.05 below the lowest bar
    assert ax.get_title() == "digits"


@pytest.mark.parametrize(
    "weights",
    [{"class": 1.0}, {"class": -1.0, "group": 1.0}, {"class": 0.0, "group": 0.0}],
)
def test_bad_loss_weights(weights):
    heads = {"class": None, "group": None}
    with pytest.raises(ValueError):
        mt.MultiTaskTask(None, heads, weights, None)

"""ch5.3 autoregressive models: the causality harness over every model, exact normalisation
over all 2^D binary images, and samplers that agree under one seed.

Every model is built in float64 (Keras floatx) so that a forbidden Jacobian entry is
an exact 0.0 and `sum_x p(x)` can be compared with 1 to 1e-10.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.generative import autoregressive as ar
from mp.generative import made, nade, pixelcnn
from tests.generative import causality

SHAPE = (4, 5, 1)  # 20 pixels for the causality checks
SMALL = (3, 4, 1)  # D = 12: 4096 binary images for the normalisation checks

BUILDERS = {
    "nade": lambda shape: nade.make_nade(shape, 8),
    "made": lambda shape: made.make_made(shape, (24, 24)),
    # 3x3 type A + 3 type-B blocks: 4 layers reach 4 columns left and 3 rows up on 4 x 5.
    "pixelcnn": lambda shape: pixelcnn.make_pixelcnn(
        shape, filters=4, num_blocks=3, first_kernel=3, head_units=8
    ),
    # The vertical stack widens by one column per side per layer: 5 layers reach 4 columns.
    "gated_pixelcnn": lambda shape: pixelcnn.make_gated_pixelcnn(
        shape, filters=4, num_layers=5, first_kernel=3, head_units=8
    ),
}


def _float64(name, shape):
    keras.utils.set_random_seed(0)
    return causality.build_in_float64(lambda: BUILDERS[name](shape))


def _blind_spot(height, width):
    """`[D, D]`: allowed pairs PixelCNN cannot see: (r, c) above (i, j) with c - j > i - r.

    A masked tap moves up-left, up, up-right or left, so going up r rows reaches at most
    r columns to the right.
    """
    blind = np.zeros([height * width] * 2, bool)
    for i in range(height):
        for j in range(width):
            for r in range(i):
                for c in range(width):
                    blind[i * width + j, r * width + c] = c - j > i - r
    return blind


# --- the harness over every model ------------------------------------------------------


@pytest.mark.parametrize("name", ["nade", "made", "gated_pixelcnn"])
def test_causal_and_complete_before_and_after_a_step(name):
    model = _float64(name, SHAPE)
    allowed = causality.ordering_allowed(causality.raster_order(20))
    x = causality.random_inputs(SHAPE)
    before, after = causality.check_after_step(model, model, x, allowed, causality.nll, x)
    assert before.ok, before.describe()
    assert after.ok, after.describe()


def test_pixelcnn_is_causal_but_fails_the_allowed_half_exactly_on_its_blind_spot():
    model = _float64("pixelcnn", SHAPE)
    allowed = causality.ordering_allowed(causality.raster_order(20))
    x = causality.random_inputs(SHAPE)
    for report in causality.check_after_step(model, model, x, allowed, causality.nll, x):
        assert report.causal, report.describe()
        assert not report.complete
        missing = np.zeros_like(allowed)
        missing[tuple(np.array(report.allowed_zero).T)] = True
        np.testing.assert_array_equal(missing, _blind_spot(4, 5))
    # e.g. pixel (2, 0) never sees (1, 2): two columns right, one row up.
    assert _blind_spot(4, 5)[2 * 5 + 0, 1 * 5 + 2]


def test_every_made_mask_is_causal_in_its_own_ordering_and_complete():
    model = causality.build_in_float64(
        lambda: made.make_made(SHAPE, (24, 24), num_masks=4, order_agnostic=True)
    )
    causality.cannot_hide(model)
    x = causality.random_inputs(SHAPE)
    orders = [model.order(m) for m in range(4)]
    assert orders[0] == list(range(20)) and len({tuple(o) for o in orders}) == 4
    for m, order in enumerate(orders):
        report = causality.check(
            lambda z, m=m: model(z, mask_index=m), x, causality.ordering_allowed(order)
        )
        assert report.ok, (m, report.describe())


def test_categorical_pixelcnn_logits_of_a_pixel_share_its_allowed_inputs():
    model = causality.build_in_float64(
        lambda: pixelcnn.make_gated_pixelcnn(
            (3, 3, 1), filters=4, num_layers=3, first_kernel=3, head_units=8, num_levels=4
        )
    )
    causality.cannot_hide(model)
    allowed = causality.ordering_allowed(causality.raster_order(9), outputs_per_position=4)
    report = causality.check(model, causality.random_inputs((3, 3, 1)), allowed)
    assert report.ok, report.describe()


def test_conditional_gated_pixelcnn_is_causal_given_the_label():
    model = causality.build_in_float64(
        lambda: pixelcnn.make_gated_pixelcnn(
            SHAPE, filters=4, num_layers=5, first_kernel=3, head_units=8, num_classes=3
        )
    )
    causality.cannot_hide(model)
    labels = tf.constant([0, 1, 2])
    fn = lambda z: model((z, labels))  # noqa: E731
    x = causality.random_inputs(SHAPE)
    report = causality.check(fn, x, causality.ordering_allowed(causality.raster_order(20)))
    assert report.ok, report.describe()
    other = model((tf.constant(x), tf.constant([1, 2, 0])))
    assert not np.allclose(fn(tf.constant(x)), other)  # the label does change the logits


class _ConstrainedDense(keras.layers.Dense):
    """The wrong way: the mask as a kernel constraint (applied after an update, not in call)."""


def test_the_harness_catches_masks_that_are_not_in_call():
    # A MADE-like net whose output mask is >= instead of > (sees its own pixel) fails the
    # forbidden half; a mask kept as a constraint fails it as soon as the weights are set.
    degrees = made.made_degrees(5, [8], rng=np.random.default_rng(0))
    leaky = keras.Sequential(
        [
            keras.Input((5,), dtype="float64"),
            made.MaskedDense(8, degrees[0], degrees[1], activation="relu", dtype="float64"),
            made.MaskedDense(5, degrees[1], degrees[0], strict=False, dtype="float64"),
        ]
    )
    causality.cannot_hide(leaky)
    allowed = causality.ordering_allowed(causality.raster_order(5))
    report = causality.check(leaky, causality.random_inputs((5,)), allowed)
    assert not report.causal and (0, 0) in report.forbidden_nonzero

    mask = made.degree_mask(degrees[0], degrees[1])
    constrained = keras.Sequential(
        [
            keras.Input((5,), dtype="float64"),
            _ConstrainedDense(
                8, activation="relu", kernel_constraint=lambda w: w * mask, dtype="float64"
            ),
            made.MaskedDense(5, degrees[1], degrees[0], strict=True, dtype="float64"),
        ]
    )
    causality.cannot_hide(constrained)
    assert not causality.check(constrained, causality.random_inputs((5,)), allowed).causal


# --- exact normalisation: sum over all 2^D images ------------------------------------------


def _total_probability(log_prob, shape=SMALL):
    images = tf.constant(ar.all_binary_images(shape))
    return float(tf.reduce_sum(tf.exp(tf.cast(log_prob(images), tf.float64))))


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_probabilities_of_all_binary_images_sum_to_one(name):
    model = _float64(name, SMALL)
    for weight in model.trainable_weights:  # weights large enough to make p(x) far from uniform
        weight.assign(weight * 3.0 + 0.1)
    total = _total_probability(model.log_prob)
    assert abs(total - 1.0) < 1e-10, total


def test_made_each_mask_and_the_ensemble_sum_to_one_and_averaged_logits_do_not():
    keras.utils.set_random_seed(0)
    model = causality.build_in_float64(
        lambda: made.make_made(SMALL, (32,), num_masks=4, order_agnostic=True, activation="tanh")
    )
    for weight in model.trainable_weights:
        weight.assign(weight * 4.0)
    for m in range(4):
        assert abs(_total_probability(lambda x, m=m: model.log_prob(x, mask_index=m)) - 1) < 1e-10
    assert abs(_total_probability(model.log_prob) - 1.0) < 1e-10  # logsumexp over masks

    # Averaging the logits of masks with different orderings: the conditional of a pixel
    # now reads pixels that come after it in the other orderings, so the product of the
    # "conditionals" is no distribution. (With one ordering and different connectivities
    # the average would still be autoregressive, hence normalised.)
    def averaged_logits(x):
        logits = tf.add_n([model(x, mask_index=m) for m in range(4)]) / 4.0
        return ar.sum_per_example(ar.pixel_log_probs(x, logits))

    assert abs(_total_probability(averaged_logits) - 1.0) > 1e-3


def test_conditional_and_categorical_models_are_normalised():
    keras.utils.set_random_seed(0)
    conditional = causality.build_in_float64(
        lambda: pixelcnn.make_gated_pixelcnn(
            SMALL, filters=4, num_layers=3, first_kernel=3, head_units=8, num_classes=3
        )
    )
    for label in range(3):
        total = _total_probability(
            lambda x, label=label: conditional.log_prob(x, labels=tf.fill([len(x)], label))
        )
        assert abs(total - 1.0) < 1e-10
    # 4 grey levels on 2 x 3 pixels: 4^6 = 4096 images.
    categorical = causality.build_in_float64(
        lambda: pixelcnn.make_pixelcnn(
            (2, 3, 1), filters=4, num_blocks=1, first_kernel=3, head_units=8, num_levels=4
        )
    )
    levels = np.array(np.meshgrid(*[np.arange(4)] * 6, indexing="ij")).reshape(6, -1).T / 3.0
    log_p = categorical.log_prob(tf.constant(levels.reshape(-1, 2, 3, 1)))
    assert abs(float(tf.reduce_sum(tf.exp(log_p))) - 1.0) < 1e-10


# --- NADE's O(TD) recursion and the samplers ----------------------------------------------


def test_nade_running_activation_equals_the_per_dimension_computation():
    keras.utils.set_random_seed(0)
    model = causality.build_in_float64(lambda: nade.make_nade(SHAPE, 16))
    rng = np.random.default_rng(0)
    for weight in model.trainable_weights:
        weight.assign(rng.normal(size=weight.shape))
    x = (rng.uniform(size=(6, *SHAPE)) < 0.5).astype(np.float64)
    np.testing.assert_allclose(model(x), model.naive_logits(x), rtol=1e-12, atol=1e-12)
    # Pixel 0 has no predecessors: its logit is c_0 + V_0 . sigmoid(b) for every image.
    b, v, c = (np.asarray(t) for t in (model.b, model.v, model.c))
    expected = c[0] + v[0] @ (1 / (1 + np.exp(-b)))
    np.testing.assert_allclose(np.asarray(model(x))[:, 0, 0, 0], expected, rtol=1e-12)


def test_nade_fast_sampler_equals_ancestral_passes_and_draws_from_p():
    keras.utils.set_random_seed(0)
    model = causality.build_in_float64(lambda: nade.make_nade((2, 2, 1), 6))
    rng = np.random.default_rng(1)
    for weight in model.trainable_weights:
        weight.assign(rng.normal(size=weight.shape) * 2)
    naive = ar.ancestral_sample(model.predict_logits, (2, 2, 1), 4000, seed=3)
    np.testing.assert_array_equal(model.sample(4000, seed=3), naive)
    # The 16 images' frequencies against p(x): binomial standard error <= sqrt(.25/4000) = .008.
    images = ar.all_binary_images((2, 2, 1))
    p = np.exp(model.log_prob(images).numpy())
    codes = naive.reshape(4000, 4) @ np.array([8, 4, 2, 1])
    frequencies = np.bincount(codes.astype(int), minlength=16) / 4000
    assert np.abs(frequencies - p).max() < 0.04


@pytest.mark.parametrize("name", ["pixelcnn", "gated_pixelcnn"])
def test_pixelcnn_fast_sampler_draws_the_naive_samplers_images(name):
    # 9 rows: the band (receptive_rows 4 and 6) crops the top rows for the last ones.
    model = _float64(name, (9, 5, 1))
    for weight in model.trainable_weights:
        weight.assign(weight * 3.0)
    fast = pixelcnn.fast_sample(model, 6, seed=5)
    np.testing.assert_array_equal(fast, pixelcnn.naive_sample(model, 6, seed=5))
    assert model.receptive_rows < 8 and 0 < fast.mean() < 1
    assert not np.array_equal(fast, pixelcnn.fast_sample(model, 6, seed=6))
    # The band is no wider than needed: the bottom pixel sees receptive_rows rows up, no more.
    causality.cannot_hide(model)
    rows = np.flatnonzero(pixelcnn.receptive_field(model, (8, 2)).any(axis=1))
    assert rows.min() == 8 - model.receptive_rows


def test_made_and_categorical_samples_are_seeded_and_in_range():
    keras.utils.set_random_seed(0)
    model = made.make_made(SMALL, (16,), num_masks=2, order_agnostic=True)
    a, b = model.sample(5, seed=1, mask_index=1), model.sample(5, seed=1, mask_index=1)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, 1.0}
    grey = pixelcnn.make_pixelcnn((3, 3, 1), filters=2, num_blocks=1, head_units=4, num_levels=4)
    levels = grey.sample(4, seed=0)
    assert set(np.unique(levels * 3).round(6)) <= {0.0, 1.0, 2.0, 3.0}


def test_receptive_field_figure_marks_the_blind_spot_only_for_plain_pixelcnn():
    plain, gated = (_float64(n, (7, 7, 1)) for n in ("pixelcnn", "gated_pixelcnn"))
    for model in (plain, gated):
        causality.cannot_hide(model)
    pixel = (4, 3)  # 4 layers reach every allowed pixel of it but the blind ones
    blind = _blind_spot(7, 7)[4 * 7 + 3].reshape(7, 7)
    seen = pixelcnn.receptive_field(plain, pixel) > 0
    np.testing.assert_array_equal(seen[:4] | blind[:4], np.ones((4, 7), bool))
    assert not (seen & blind).any() and not seen[5:].any() and seen[4, :3].all()
    assert (pixelcnn.receptive_field(gated, pixel) > 0)[:4].all()
    figure = pixelcnn.receptive_field_figure([plain, gated], pixel, ["PixelCNN", "Gated"])
    titles = [axis.get_title() for axis in figure.axes]
    assert "blind to 0" in titles[1] and f"blind to {int(blind.sum())}" in titles[0]


def test_task_draws_masks_per_step_and_reports_nats():
    keras.utils.set_random_seed(0)
    model = made.make_made(SMALL, (8,), num_masks=3)
    task = ar.AutoregressiveTask(model, keras.optimizers.Adam(1e-3), seed=0)
    task.build()
    task.global_step = tf.Variable(0, dtype=tf.int64)
    x = tf.constant(ar.all_binary_images(SMALL)[:16], tf.float32)
    drawn = set()
    for step in range(12):
        task.global_step.assign(step)
        drawn.add(int(task._step_kwargs()["mask_index"]))
    assert drawn == {0, 1, 2}
    outputs = task.train_step(x)
    # bits per dim = nats per image / (D ln 2), D = 12.
    np.testing.assert_allclose(
        outputs["metrics/bits_per_dim"], outputs["loss/total"] / (12 * math.log(2)), rtol=1e-6
    )
    sums = task.eval_step(x)
    np.testing.assert_allclose(sums["loss"], -tf.reduce_sum(model.log_prob(x)), rtol=1e-5)


@pytest.mark.parametrize("name", ["made", "pixelcnn"])
def test_model_fit_lowers_the_nll(name):
    keras.utils.set_random_seed(0)
    model = (
        made.make_made(SMALL, (32,), num_masks=2, order_agnostic=False)
        if name == "made"
        else BUILDERS[name](SMALL)
    )
    # Two images repeated: a model that learns gives them most of the mass.
    x = np.repeat(ar.all_binary_images(SMALL)[[5, 1000]], 16, axis=0).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(0.02))
    history = model.fit(x, epochs=20, batch_size=8, verbose=0).history["nll"]
    assert history[-1] < 0.5 * history[0]
    assert model.evaluate(x, verbose=0, return_dict=True)["nll"] < 0.5 * history[0]

"""Generic tests every model and layer of the package passes.

Each chapter lists its models and layers in `tests/conformance/cases_<chapter>.py`
as `CASES`, entries `(name, build_fn, input_shape, output_shape,
trainable_params)`; this file collects every such list. For every entry:
output shape, exact trainable-parameter count (worked out by hand in the
comment), `.keras` save/load round trip (so `get_config` and registration
work), eager == `tf.function`, one trace for any batch size, and a checkpoint
save/restore.
"""

import glob
import importlib
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import mp  # noqa: F401  (registers the package's layers with Keras)


def _collect():
    """Every `CASES` list of the `cases_*.py` files beside this one."""
    cases = []
    for path in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "cases_*.py"))):
        module = importlib.import_module(f"tests.conformance.{os.path.basename(path)[:-3]}")
        cases.extend(module.CASES)
    return cases


CONFORMANCE = _collect()

IDS = [entry[0] for entry in CONFORMANCE]


def _inputs(shape, batch, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype("float32")


@pytest.fixture(params=CONFORMANCE, ids=IDS)
def entry(request):
    keras.utils.set_random_seed(0)
    name, build, input_shape, output_shape, params = request.param
    return name, build(), input_shape, output_shape, params


def test_output_shape_and_parameter_count(entry):
    _, model, input_shape, output_shape, params = entry
    assert model(_inputs(input_shape, 3)).shape == (3, *output_shape)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == params


def test_keras_file_round_trip(entry, tmp_path):
    name, model, input_shape, _, _ = entry
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = _inputs(input_shape, 4)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)
    as_json = lambda config: json.loads(json.dumps(config))  # tuples and lists alike
    assert as_json(loaded.get_config()) == as_json(model.get_config())


def test_eager_equals_function_and_traces_once(entry):
    _, model, input_shape, _, _ = entry
    function = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((None, *input_shape), tf.float32)],
    )
    for batch in (1, 2, 7):
        x = _inputs(input_shape, batch, seed=batch)
        # float32 round-off only: in a graph, grappler folds an inference batch norm into
        # the convolution before it (FusedBatchNorm after Conv2D), eager runs them apart.
        np.testing.assert_allclose(function(x), model(x, training=False), rtol=1e-4, atol=1e-5)
    assert function.experimental_get_tracing_count() == 1


def test_checkpoint_save_restore(entry, tmp_path):
    _, model, input_shape, _, _ = entry
    x = _inputs(input_shape, 2)
    expected = model(x).numpy()
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    for w in model.weights:
        w.assign(w + tf.random.normal(w.shape, seed=1))
    assert not np.allclose(model(x), expected)
    tf.train.Checkpoint(model=model).restore(path).assert_existing_objects_matched()
    np.testing.assert_allclose(model(x), expected, rtol=1e-6, atol=1e-6)

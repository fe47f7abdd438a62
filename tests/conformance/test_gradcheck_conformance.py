"""Gradient check of every conformance entry: backpropagation against finite differences.

Every `(name, build_fn, input_shape, ...)` of `test_conformance.CONFORMANCE`
(all chapters' `cases_*.py`) is rebuilt with float64 as Keras' floatx and
checked with `mp.training.gradcheck.check_model` with respect to its input
and every trainable variable, in inference mode (dropout and noise off).

Cost: each checked coordinate costs two forward passes, so at most
`MAX_COORDINATES` coordinates of the input and of at most `MAX_VARIABLES`
trainable variables (a random sample) are checked: at most
2 * 6 * (8 + 1) = 108 forward passes of a batch of two per entry, whatever
the size of the model; the classic CNN on Fashion-MNIST (3.2M parameters,
eight variables) takes about 1.5 s. `H = 1e-6` rather than the default 1e-5: one weight of a first
convolution moves thousands of ReLU and max-pool inputs, and with 1e-5 one of
them crosses its kink often enough to fail the check on a correct gradient
(see the module docstring of `mp.training.gradcheck`).
"""

import keras
import pytest

from mp.training.gradcheck import assert_gradients_match, check_model
from tests.conformance.test_conformance import CONFORMANCE, IDS

MAX_COORDINATES = 6
MAX_VARIABLES = 8
H = 1e-6
TOLERANCE = 1e-6


@pytest.mark.parametrize("entry", CONFORMANCE, ids=IDS)
def test_gradients_match_finite_differences(entry):
    _, build, input_shape, _, _ = entry
    keras.utils.set_random_seed(0)
    errors = check_model(
        build,
        input_shape,
        max_coordinates=MAX_COORDINATES,
        max_variables=MAX_VARIABLES,
        h=H,
        seed=0,
    )
    assert "input" in errors and len(errors) >= 2  # the input and at least one variable
    assert_gradients_match(errors, tolerance=TOLERANCE)

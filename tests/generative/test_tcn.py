"""TCN (mp.generative.tcn): the causality harness measures the receptive field of the formula.

The receptive field by hand: k = 3, dilations 1, 2, 4: each block has two convolutions
reaching (k-1) d steps back, F = 1 + 2 * 2 * (1 + 2 + 4) = 29. With T = 36 > F the
outputs at t >= 28 see exactly the 29 steps t-28..t and nothing later.
"""

import warnings

import numpy as np
import pytest

from mp.generative import tcn
from tests.generative import causality


def window_allowed(steps, field, *, strict=False, outputs_per_step=1, inputs_per_step=1):
    """`allowed[o, i]`: input step s may reach output step t.

    `0 <= t - s < field` (a TCN: the current step and `field - 1` before it), or with
    `strict` `1 <= t - s <= field` (a next-step predictor: the `field` steps before t).
    """
    t = np.arange(steps)[:, None]
    s = np.arange(steps)[None, :]
    lag = t - s
    allowed = (lag >= 1) & (lag <= field) if strict else (lag >= 0) & (lag < field)
    allowed = np.repeat(allowed, outputs_per_step, axis=0)
    return np.repeat(allowed, inputs_per_step, axis=1)


def _tcn64(steps=36, **kwargs):
    options = dict(filters=3, kernel_size=3, num_blocks=3, output_units=2, return_sequences=True)
    return causality.build_in_float64(lambda: tcn.make_tcn((steps, 2), **(options | kwargs)))


def test_receptive_field_formula_by_hand():
    assert tcn.receptive_field(3, (1, 2, 4)) == 29  # 1 + 2*2*7
    assert tcn.receptive_field(2, tcn.exponential_dilations(8)) == 511  # 1 + 2*1*255
    assert tcn.receptive_field(5, (1,), convs_per_block=1) == 5
    with pytest.raises(ValueError, match="dilation"):
        tcn.receptive_field(3, (1, 0, 4))
    with pytest.raises(ValueError, match="dilation"):
        tcn.make_tcn((10, 1), dilations=(1, -2))


def test_causality_harness_measures_the_formula_and_nothing_from_the_future():
    model = _tcn64()
    field = tcn.model_receptive_field(model)
    assert field == 29
    causality.cannot_hide(model)
    inputs = causality.random_inputs((36, 2))
    allowed = window_allowed(36, field, outputs_per_step=2, inputs_per_step=2)
    report = causality.check(model, inputs, allowed)
    assert report.ok, report.describe()
    jac = causality.jacobians(model, inputs)
    assert tcn.measured_receptive_field(jac, 2, 2) == field
    # The check can fail: one step more or less of field, or a strict (shifted) window.
    nonzero = (jac != 0.0).any(axis=0)
    for wrong in (field - 1, field + 1):
        bad = window_allowed(36, wrong, outputs_per_step=2, inputs_per_step=2)
        assert (nonzero & ~bad).any() or (~nonzero & bad).any()


def test_no_strided_convolution_and_output_length_kept():
    model = tcn.make_tcn((20, 1), filters=4, num_blocks=3, return_sequences=True)
    convs = [
        layer
        for block in model.layers
        if isinstance(block, tcn.TemporalBlock)
        for layer in (block.conv1, block.conv2, block.downsample)
        if layer is not None
    ]
    assert len(convs) == 7 and all(c.strides == (1,) for c in convs)
    assert model(np.zeros((2, 20, 1), np.float32)).shape == (2, 20, 1)


def test_many_to_one_pixel_by_pixel_and_parameter_count():
    # (8, 8) digits read as 64 pixels: block 1: conv 1->4 k=2: 2*1*4+4 = 12, conv 4->4:
    # 2*4*4+4 = 36, downsample 1->4: 8; block 2: 36 + 36; readout 4*10+10 = 50. 178.
    model = tcn.make_tcn((8, 8), filters=4, kernel_size=2, num_blocks=2, output_units=10,
                         pixel_by_pixel=True)
    assert model.count_params() == 178
    assert model(np.zeros((3, 8, 8), np.float32)).shape == (3, 10)
    # The last output reads pixels 64-7 .. 64 only (F = 1 + 2*1*3 = 7): the others get no
    # gradient; the norms of a ch4-style measurement show the cut-off.
    norms = tcn.InputGradientNorms(np.random.default_rng(0).uniform(size=(4, 8, 8)))
    curve = norms.measure(model, "init")  # per row of 8 pixels: rows 0..6 see nothing
    assert np.all(curve[:7] == 0.0) and curve[7] > 0.0


def test_warns_when_the_field_is_shorter_than_the_task():
    with pytest.warns(UserWarning, match="receptive field"):
        assert not tcn.check_receptive_field(29, 100, "the adding problem")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tcn.check_receptive_field(511, 100)

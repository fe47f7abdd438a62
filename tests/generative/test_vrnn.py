"""VRNN and C-VRNN (mp.generative.vrnn): the ELBO against a NumPy unroll, the KL in closed
form, causality of the prior and the decoder, gradients through the recurrence, sampling."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.generative import vrnn
from tests.generative import causality

TINY = dict(latent_dim=2, units=3, hidden_units=4, cell="rnn")


def _model(steps=3, dim=4, **kwargs):
    model = vrnn.VRNN(dim, steps, **(TINY | kwargs))
    x = np.zeros((1, steps, dim), np.float32)
    model((x, np.zeros(1, np.int32)) if model.conditional else x)
    return model


def _numpy_kl(mq, sq, mp_, sp):
    # KL(N(mq, sq^2) || N(mp, sp^2)) = sum_j log(sp/sq) + (sq^2 + (mq - mp)^2) / (2 sp^2) - 1/2
    return np.sum(np.log(sp / sq) + (sq**2 + (mq - mp_) ** 2) / (2 * sp**2) - 0.5, axis=-1)


def test_kl_is_the_closed_form():
    rng = np.random.default_rng(0)
    mq, mp_ = rng.normal(size=(2, 5, 3))
    sq, sp = rng.uniform(0.2, 2.0, size=(2, 5, 3))
    np.testing.assert_allclose(vrnn.gaussian_kl(mq, sq, mp_, sp), _numpy_kl(mq, sq, mp_, sp),
                               rtol=1e-6)
    # Identical Gaussians: 0. By hand, 1-D: N(0, 1) vs N(1, 2^2): log 2 + (1 + 1)/8 - 1/2.
    assert float(vrnn.gaussian_kl([[0.0]], [[1.0]], [[0.0]], [[1.0]])[0]) == 0.0
    expected = np.log(2.0) + 2.0 / 8.0 - 0.5
    assert float(vrnn.gaussian_kl([[0.0]], [[1.0]], [[1.0]], [[2.0]])[0]) == pytest.approx(expected)


def _numpy_elbo(model, x, eps, onehot=None):
    """The VRNN of the module docstring, step by step in NumPy (cell="rnn": h = tanh(.))."""
    w = {v.path.split("/", 1)[1]: v.numpy().astype(np.float64) for v in model.weights}
    relu = lambda a: np.maximum(a, 0.0)  # noqa: E731
    softplus = lambda a: np.log1p(np.exp(a))  # noqa: E731

    def dense(name, a):
        return a @ w[f"{name}/kernel"] + w[f"{name}/bias"]

    def gaussian(params):
        d = params.shape[-1] // 2
        return params[:, :d], softplus(params[:, d:]) + model.min_scale

    def extra(parts):
        return np.concatenate(parts + ([] if onehot is None else [onehot]), axis=-1)

    batch, steps, _ = x.shape
    h = np.zeros((batch, model.units))
    elbo = np.zeros(batch)
    for t in range(steps):
        fx = relu(dense("phi_x", x[:, t]))
        m0, s0 = gaussian(dense("prior_params", relu(dense("prior_hidden", extra([h])))))
        mq, sq = gaussian(dense("encoder_params", relu(dense("encoder_hidden", extra([fx, h])))))
        z = mq + sq * eps[:, t]
        fz = relu(dense("phi_z", z))
        logits = dense("decoder_logits", relu(dense("decoder_hidden", extra([fz, h]))))
        # log Bernoulli(x; sigmoid(l)) = x l - log(1 + e^l)
        log_lik = np.sum(x[:, t] * logits - np.log1p(np.exp(logits)), axis=-1)
        elbo += log_lik - _numpy_kl(mq, sq, m0, s0)
        inputs = np.concatenate([fx, fz], axis=-1)
        cell = model.cell  # h_t = tanh([phi_x, phi_z] W_xh + h_{t-1} W_hh + b)
        h = np.tanh(inputs @ cell.kernel.numpy() + h @ cell.recurrent_kernel.numpy()
                    + cell.bias.numpy())
    return elbo


@pytest.mark.parametrize("num_classes", [None, 3])
def test_elbo_equals_a_numpy_unroll(num_classes):
    keras.utils.set_random_seed(0)
    model = causality.build_in_float64(lambda: _model(num_classes=num_classes))
    rng = np.random.default_rng(1)
    x = (rng.uniform(size=(5, 3, 4)) < 0.5).astype(np.float64)
    eps = rng.normal(size=(5, 3, 2))
    labels = np.array([0, 1, 2, 1, 0])
    inputs = x if num_classes is None else (x, labels)
    onehot = None if num_classes is None else np.eye(3)[labels]
    terms = model.elbo_terms(inputs, eps=eps)
    np.testing.assert_allclose(terms["elbo"], _numpy_elbo(model, x, eps, onehot), rtol=1e-10)
    np.testing.assert_allclose(terms["elbo"], -(terms["distortion"] + terms["rate"]), rtol=1e-12)
    assert np.all(terms["rate"].numpy() > 0)


def test_iwae_bound_is_the_logsumexp_of_trajectory_weights():
    keras.utils.set_random_seed(1)
    model = causality.build_in_float64(lambda: _model())
    x = (np.random.default_rng(2).uniform(size=(4, 3, 4)) < 0.5).astype(np.float64)
    # k = 3 in chunks of one: sample i uses the noise of seed (7, i).
    bound = model.iwae_bound(x, 3, seed=7, chunk_size=1).numpy()
    log_w = np.stack([model.log_weights(x, tf.cast(model.noise(4, (7, i)), tf.float64)).numpy()
                      for i in range(3)])
    expected = np.log(np.mean(np.exp(log_w), axis=0))
    np.testing.assert_allclose(bound, expected, rtol=1e-10)
    # Averaged over draws the single-sample weight is the ELBO; the bound is above it.
    assert np.mean(model.iwae_bound(x, 64, seed=1)) > np.mean(model.elbo_terms(x)["elbo"]) - 0.1


def test_prior_and_decoder_never_read_the_future():
    # Inputs per step: [x_t (4), z_t (2)]; outputs per step: prior loc, scale (2 + 2),
    # decoder logits (4). The prior of z_t reads x_<t, z_<t (through h_{t-1}); the
    # decoder reads those and z_t; nothing reads x_t or later.
    steps, dim, latent = 4, 4, 2
    model = causality.build_in_float64(lambda: _model(steps, dim, cell="gru"))
    causality.cannot_hide(model)

    def fn(inputs):
        out = model.unroll(inputs[..., :dim], z=inputs[..., dim:])
        return tf.concat([out["prior_loc"], out["prior_scale"], out["logits"]], axis=-1)

    t_out = np.repeat(np.arange(steps), 2 * latent + dim)
    part = np.tile(np.arange(2 * latent + dim), steps) >= 2 * latent  # decoder outputs
    s_in = np.repeat(np.arange(steps), dim + latent)
    z_in = np.tile(np.arange(dim + latent), steps) >= dim
    allowed = (s_in[None] < t_out[:, None]) | (
        (s_in[None] == t_out[:, None]) & part[:, None] & z_in[None]
    )
    report = causality.check(fn, causality.random_inputs((steps, dim + latent)), allowed)
    assert report.ok, report.describe()


def test_gradients_reach_the_prior_and_cross_the_recurrence():
    keras.utils.set_random_seed(2)
    model = _model(4, 4, cell="gru")
    x = tf.constant((np.random.default_rng(3).uniform(size=(6, 4, 4)) < 0.5), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        terms = model.elbo_terms(x, seed=(0, 1))
        loss = -tf.reduce_mean(terms["elbo"])
        out = model.unroll(x, eps=model.noise(6, (0, 2)))
        last_prior = tf.reduce_sum(out["prior_loc"][:, -1])
    variables = [model.prior_hidden.kernel, model.prior_params.kernel,
                 model.encoder_params.kernel, model.cell.recurrent_kernel]
    for variable, g in zip(variables, tape.gradient(loss, variables)):
        assert g is not None and float(tf.norm(g)) > 0, variable.path
    # The last step's prior depends on the first row through h (not detached).
    first = tape.gradient(last_prior, x)[:, 0]
    assert float(tf.norm(first)) > 0


def test_sampling_shapes_seeds_and_one_style_across_classes():
    keras.utils.set_random_seed(3)
    model = _model(5, 6, num_classes=4)
    labels = np.array([0, 1, 2, 3])
    a = model.sample(4, labels=labels, seed=1)
    assert a.shape == (4, 5, 6) and set(np.unique(a)) <= {0.0, 1.0}
    np.testing.assert_array_equal(a, model.sample(4, labels=labels, seed=1))
    grid = vrnn.same_style_grid(model, num_styles=2, seed=0)
    assert grid.shape == (2 * 4, 5, 6, 1)
    # Row 0: one style (noise), four classes: the class alone changes the images.
    assert not np.allclose(grid[0], grid[1])
    # Same class and noise, another style: different images too.
    assert not np.allclose(grid[0], grid[4])
    restyled = model.render(a, labels, labels[::-1], seed=2)
    assert restyled.shape == (4, 5, 6)
    with pytest.raises(ValueError, match="needs labels"):
        model.sample(2)

"""Tests of mp.generative.vae against closed forms and Monte Carlo estimates."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import mp.data
from mp.engine import Trainer
from mp.generative import vae

tfd = tfp.distributions


def test_kl_to_standard_normal_matches_tfp_and_monte_carlo():
    rng = np.random.default_rng(0)
    loc = rng.normal(size=(5, 3))
    scale = rng.uniform(0.3, 2.0, size=(5, 3))
    q = tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale)
    p = tfd.MultivariateNormalDiag(loc=np.zeros(3), scale_diag=np.ones(3))
    ours = vae.kl_to_standard_normal(tf.constant(loc), tf.constant(scale)).numpy()
    np.testing.assert_allclose(ours, tfd.kl_divergence(q, p).numpy(), rtol=1e-10)
    # Monte Carlo: KL = E_q[log q(z) - log p(z)], within 4 standard errors.
    z = q.sample(20_000, seed=1)
    log_ratio = (q.log_prob(z) - p.log_prob(z)).numpy()
    estimate = log_ratio.mean(axis=0)
    standard_error = log_ratio.std(axis=0) / math.sqrt(len(log_ratio))
    assert np.all(np.abs(ours - estimate) < 4 * standard_error)
    # One-dimensional hand check: mu = 1, sigma = 1 -> 1/2 (1 + 1 - 1 - 0) = 0.5.
    assert vae.kl_to_standard_normal(tf.constant([[1.0]]), tf.constant([[1.0]])).numpy()[0] == 0.5


def test_reparameterised_gradient_matches_the_analytic_gradient():
    # f(z) = z^2 with z ~ N(mu, sigma^2): E[f] = mu^2 + sigma^2, so
    # dE/dmu = 2 mu = 1.4 and dE/dsigma = 2 sigma = 2.6.
    mu, sigma = tf.Variable(0.7, dtype=tf.float64), tf.Variable(1.3, dtype=tf.float64)
    eps = tf.random.stateless_normal([100_000], seed=[0, 0], dtype=tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        z = vae.reparameterized_sample(mu, sigma, eps)
        f = z**2
        mean_f = tf.reduce_mean(f)
    grad_mu, grad_sigma = tape.gradient(mean_f, [mu, sigma])
    assert grad_mu is not None and grad_sigma is not None  # gradients reach mu and sigma
    # Per-sample gradients 2 z and 2 z eps give the standard errors.
    se_mu = np.std(2 * z.numpy()) / math.sqrt(len(eps))
    se_sigma = np.std(2 * z.numpy() * eps.numpy()) / math.sqrt(len(eps))
    assert abs(float(grad_mu) - 1.4) < 4 * se_mu
    assert abs(float(grad_sigma) - 2.6) < 4 * se_sigma


def _linear_gaussian(d_x=4, seed=0):
    """p(z) = N(0, I_2), p(x | z) = N(W z + b, s^2 I) with orthogonal columns of W.

    Then p(x) = N(b, W W^T + s^2 I) and the posterior N(m, S) has a diagonal
    S = (I + W^T W / s^2)^{-1}, m = S W^T (x - b) / s^2, so a diagonal Gaussian
    q can be exact.
    """
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(d_x, 2)))
    w = basis * np.array([2.0, 0.5])
    b = rng.normal(size=d_x)
    s = 0.7
    prior = tfd.MultivariateNormalDiag(loc=np.zeros(2), scale_diag=np.ones(2))
    marginal = tfd.MultivariateNormalTriL(
        loc=b, scale_tril=np.linalg.cholesky(w @ w.T + s**2 * np.eye(d_x))
    )
    x = marginal.sample(200, seed=2).numpy()
    cov = np.linalg.inv(np.eye(2) + w.T @ w / s**2)
    assert np.allclose(cov, np.diag(np.diag(cov)))
    post_loc = ((x - b) @ w / s**2) @ cov.T
    post_scale = np.broadcast_to(np.sqrt(np.diag(cov)), post_loc.shape)

    def decode(z):
        return tfd.Independent(tfd.Normal(loc=z @ w.T + b, scale=s), reinterpreted_batch_ndims=1)

    return x, prior, decode, marginal, post_loc, post_scale


def test_iwae_with_the_exact_posterior_is_log_p_x_for_any_k_and_chunking():
    x, prior, decode, marginal, loc, scale = _linear_gaussian()
    exact = tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale)
    log_px = marginal.log_prob(x).numpy()
    for k, chunk in ((1, 1), (10, 3), (5000, 500)):
        bound = vae.importance_weighted_bound(x, exact, prior, decode, k, chunk_size=chunk, seed=0)
        np.testing.assert_allclose(bound.numpy(), log_px, rtol=0, atol=1e-8)


def test_iwae_grows_with_k_towards_log_p_x_with_an_inexact_posterior():
    x, prior, decode, marginal, loc, scale = _linear_gaussian()
    wrong = tfd.MultivariateNormalDiag(loc=loc + 1.0, scale_diag=scale)  # shifted by 1
    log_px = marginal.log_prob(x).numpy().mean()
    bounds = [
        vae.importance_weighted_bound(x, wrong, prior, decode, k, chunk_size=50, seed=k)
        .numpy()
        .mean()
        for k in (1, 10, 100, 1000)
    ]
    # ELBO (k = 1) < IWAE_10 < IWAE_100 < IWAE_1000 <= log p(x), averaged over 200 examples.
    assert bounds[0] < bounds[1] < bounds[2] < bounds[3] <= log_px + 1e-3
    assert log_px - bounds[3] < 0.1 * (log_px - bounds[0])  # most of the gap is closed


@pytest.mark.parametrize("likelihood", vae.LIKELIHOODS)
def test_decoder_log_likelihood_matches_numpy(likelihood):
    keras.utils.set_random_seed(0)
    model = vae.make_vae((8, 8, 1), 2, likelihood=likelihood, hidden_units=(8,))
    z = np.random.default_rng(0).normal(size=(3, 2)).astype("float32")
    x = np.random.default_rng(1).uniform(0.05, 0.95, size=(3, 8, 8, 1)).astype("float32")
    out = model.decoder(z).numpy().astype("float64")
    got = model.likelihood_distribution(z).log_prob(x).numpy()
    x = x.astype("float64")
    if likelihood == "gaussian":
        loc, raw = out[..., :1], out[..., 1:]
        scale = np.log1p(np.exp(raw)) + vae.SCALE_EPSILON
        per_pixel = -0.5 * ((x - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)
    else:
        p = 1 / (1 + np.exp(-out))
        per_pixel = x * np.log(p) + (1 - x) * np.log1p(-p)
        if likelihood == "continuous_bernoulli":
            # Normaliser C(p) = 2 artanh(1 - 2p) / (1 - 2p) (Loaiza-Ganem and Cunningham, 2019).
            per_pixel += np.log(2 * np.arctanh(1 - 2 * p) / (1 - 2 * p))
    np.testing.assert_allclose(got, per_pixel.sum(axis=(1, 2, 3)), rtol=1e-4)


def _digits(n=256):
    images, _ = mp.data.load_numpy("digits", "train")
    x = images[:n].astype("float32") / 255.0
    return (np.random.default_rng(0).uniform(size=x.shape) < x).astype("float32")


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_elbo_terms_and_iwae_on_a_vae(kind):
    keras.utils.set_random_seed(0)
    model = vae.make_vae((8, 8, 1), 3, kind=kind, hidden_units=(32,), filters=(4, 8), seed=0)
    x = tf.constant(_digits(16))
    terms = model.elbo_terms(x)
    np.testing.assert_allclose(terms["elbo"], -(terms["rate"] + terms["distortion"]), rtol=1e-6)
    loc, scale = model.posterior_params(x)
    np.testing.assert_allclose(terms["rate"], vae.kl_to_standard_normal(loc, scale), rtol=1e-6)
    # The one-sample distortion, averaged over 200 calls, against an independent Monte Carlo
    # estimate of E_q[-log p(x | z)] with 2000 samples drawn by TFP, within 4 standard errors.
    draws = [model.elbo_terms(x) for _ in range(200)]
    distortion = np.mean([d["distortion"].numpy().mean() for d in draws])
    z = model.posterior(x).sample(2000, seed=7)  # [2000, 16, 3]
    reference = -model.likelihood_distribution(tf.reshape(z, [-1, 3])).log_prob(
        tf.reshape(tf.repeat(x[tf.newaxis], 2000, axis=0), [-1, 8, 8, 1])
    )
    reference = tf.reduce_mean(tf.reshape(reference, [2000, 16]), axis=1).numpy()
    standard_error = reference.std() / math.sqrt(len(reference))
    assert abs(distortion - reference.mean()) < 4 * standard_error + 0.05
    # ELBO averaged over the 200 draws, against IWAE with growing k (same examples).
    elbo = np.mean([d["elbo"].numpy().mean() for d in draws])
    iwae = [model.iwae_bound(x, k, seed=k).numpy().mean() for k in (1, 10, 100)]
    assert abs(iwae[0] - elbo) < 1.0  # IWAE_1 is a one-sample ELBO
    assert elbo < iwae[1] < iwae[2]


def test_model_fit_and_the_engine_task_train_the_same_loss(tmp_path):
    x = _digits(256)
    keras.utils.set_random_seed(0)
    model = vae.make_vae((8, 8, 1), 2, hidden_units=(32,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate(x, batch_size=256, verbose=0, return_dict=True)
    history = model.fit(x, batch_size=32, epochs=3, verbose=0).history
    assert set(history) == {"elbo", "rate", "distortion"}
    after = model.evaluate(x, batch_size=256, verbose=0, return_dict=True)
    assert after["elbo"] > before["elbo"] + 5  # fit improved the bound
    # The engine: the same loss through VAETask and the Trainer.
    keras.utils.set_random_seed(0)
    task = vae.VAETask(
        lambda: vae.make_vae((8, 8, 1), 2, hidden_units=(32,), seed=0),
        lambda: keras.optimizers.Adam(1e-2),
    )
    data = tf.data.Dataset.from_tensor_slices(x).repeat().batch(32)
    trainer = Trainer(task, str(tmp_path), train_steps=24, log_every=8, progress=False)
    result = trainer.fit(data, tf.data.Dataset.from_tensor_slices(x).batch(256))
    train = result["train"]
    assert train["loss/total"] == pytest.approx(-train["metrics/elbo"], rel=1e-5)
    assert result["eval"]["elbo"] == pytest.approx(
        -(result["eval"]["rate"] + result["eval"]["distortion"]), rel=1e-5
    )
    assert result["eval"]["elbo"] > before["elbo"] + 5


# --- binarised data and evaluation (what apps/train_vae.py calls) -----------------


def test_dynamic_binarisation_is_seeded_and_has_the_grey_level_as_mean():
    grey = tf.fill([200, 8, 8, 1], 0.3)
    a = vae.binarize_batch(grey, tf.constant(1, tf.int64), tf.constant(5, tf.int64))
    b = vae.binarize_batch(grey, tf.constant(1, tf.int64), tf.constant(5, tf.int64))
    c = vae.binarize_batch(grey, tf.constant(1, tf.int64), tf.constant(6, tf.int64))
    np.testing.assert_array_equal(a, b)  # same (seed, step): same bits (resumption)
    assert not np.array_equal(a, c)  # the next step draws new bits
    assert set(np.unique(a.numpy())) == {0.0, 1.0}
    # 12,800 Bernoulli(0.3) pixels: standard error sqrt(0.3*0.7/12800) = 0.004.
    assert abs(float(tf.reduce_mean(a)) - 0.3) < 0.02


def test_training_images_binarise_batch_i_with_the_seed_of_i_from_any_start():
    grey = tf.data.Dataset.from_tensor_slices((tf.fill([6, 8, 8, 1], 0.5), tf.range(6))).batch(2)
    full = [x.numpy() for x in vae.training_images(grey, "dynamic", seed=4)]
    resumed = [x.numpy() for x in vae.training_images(grey.skip(1), "dynamic", seed=4, start=1)]
    np.testing.assert_array_equal(np.stack(full[1:]), np.stack(resumed))
    seed = tf.constant(4, tf.int64)
    expected = vae.binarize_batch(tf.fill([2, 8, 8, 1], 0.5), seed, tf.constant(2, tf.int64))
    np.testing.assert_array_equal(full[2], expected)
    assert not np.array_equal(full[0], full[1])
    kept = [x.numpy() for x in vae.training_images(grey, "none")]
    np.testing.assert_array_equal(np.concatenate(kept), np.full([6, 8, 8, 1], 0.5))


def test_evaluation_images_are_the_same_bits_in_every_run():
    images = np.random.default_rng(0).integers(0, 256, size=(50, 8, 8, 1), dtype=np.uint8)
    a, b = vae.evaluation_images(images, "dynamic"), vae.evaluation_images(images, "dynamic")
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and set(np.unique(a)) == {0.0, 1.0}
    grey = vae.evaluation_images(images, "none")
    np.testing.assert_allclose(grey, images / 255.0, rtol=1e-6)
    assert abs(a.mean() - grey.mean()) < 0.03  # Bernoulli(grey level): the same mean


def test_check_binarization_pairs_each_likelihood_with_its_pixels():
    vae.check_binarization("bernoulli", "dynamic")
    vae.check_binarization("continuous_bernoulli", "none")
    vae.check_binarization("gaussian", "none")
    for likelihood, binarize, match in (
        ("bernoulli", "none", "0/1 pixels"),
        ("gaussian", "dynamic", "binarize=none"),
        ("poisson", "none", "likelihood must be one of"),
        ("bernoulli", "static", "binarize must be one of"),
    ):
        with pytest.raises(ValueError, match=match):
            vae.check_binarization(likelihood, binarize)


def test_iwae_bounds_are_reproducible_and_match_the_model_bound():
    keras.utils.set_random_seed(0)
    model = vae.make_vae((8, 8, 1), 2, hidden_units=(16,), seed=0)
    x = _digits(11)  # a last batch of 3 with batch=4
    bounds = vae.iwae_bounds(model, x, 20, seed=5, batch=4)
    assert bounds.shape == (11,)
    np.testing.assert_array_equal(bounds, vae.iwae_bounds(model, x, 20, seed=5, batch=4))
    # Images 4..7 are the second call: the seed of their draws is seed * 1_000_003 + 4.
    direct = model.iwae_bound(x[4:8], 20, chunk_size=20, seed=5 * 1_000_003 + 4).numpy()
    np.testing.assert_allclose(bounds[4:8], direct, rtol=1e-5)
    elbo = model.elbo_terms(tf.constant(x), training=False)["elbo"].numpy()
    assert bounds.mean() > elbo.mean() - 1.0  # about as tight as the ELBO or tighter


def test_fid_metrics_score_means_and_true_samples(tiny_fid_cache):
    from mp.generative import fid

    keras.utils.set_random_seed(0)
    model = vae.make_vae((8, 8, 1), 2, hidden_units=(16,), seed=0)
    values = vae.fid_metrics(model, "digits", 40, seed=2, cache_dir=tiny_fid_cache)
    assert values["fid_samples"] == 40
    means = model.sample(40, seed=2, mean=True).numpy()
    draws = model.sample(40, seed=2).numpy()
    assert values["fid_classifier"] == pytest.approx(
        fid.fid_classifier(means, "digits", cache_dir=tiny_fid_cache), rel=1e-6
    )
    assert values["fid_classifier_true_samples"] == pytest.approx(
        fid.fid_classifier(draws, "digits", cache_dir=tiny_fid_cache), rel=1e-6
    )
    assert values["fid_classifier"] > values["fid_real_floor"] > 0

"""Tests of mp/generative/fid.py: the Fréchet formula, feature statistics, the classifier cache."""

import os

import numpy as np
import pytest
import scipy.linalg

from mp.generative import fid


def _random_covariance(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_frechet_distance_1d_closed_form():
    # For N(m1, s1^2) and N(m2, s2^2): d^2 = (m1 - m2)^2 + (s1 - s2)^2.
    # m1=1, s1=2 (variance 4), m2=-0.5, s2=0.5 (variance 0.25):
    # (1.5)^2 + (1.5)^2 = 2.25 + 2.25 = 4.5.
    assert fid.frechet_distance([1.0], [[4.0]], [-0.5], [[0.25]]) == pytest.approx(4.5)
    assert fid.frechet_distance(1.0, 4.0, -0.5, 0.25) == pytest.approx(4.5)


def test_frechet_distance_commuting_covariances():
    # Covariances sharing eigenvectors Q: Sigma1 = Q diag(a) Q^T, Sigma2 = Q diag(b) Q^T.
    # Then (Sigma1 Sigma2)^(1/2) = Q diag(sqrt(a b)) Q^T and
    # d^2 = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    a = np.array([1.0, 2.0, 3.0, 0.5, 4.0])
    b = np.array([4.0, 1.0, 3.0, 2.0, 0.25])
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = fid.frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_matches_scipy_sqrtm_and_is_symmetric():
    rng = np.random.default_rng(1)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_covariance(rng, d), _random_covariance(rng, d)
    # The textbook formula with a general matrix square root.
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7)
    assert fid.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-7)
    assert fid.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_rejects_bad_shapes():
    with pytest.raises(ValueError, match="Received"):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


def test_feature_statistics_against_a_numpy_loop():
    # A linear "extractor" x -> x A on flattened images; batch size 7 does not divide N = 30.
    rng = np.random.default_rng(2)
    images = rng.uniform(size=(30, 2, 2, 1)).astype(np.float32)
    a = rng.normal(size=(4, 3)).astype(np.float32)

    def extractor(batch):
        return batch.reshape(len(batch), -1) @ a

    mu, sigma = fid.feature_statistics(extractor, images, batch_size=7)
    features = images.reshape(30, -1).astype(np.float64) @ a.astype(np.float64)
    mean = sum(features) / 30
    cov = sum(np.outer(f - mean, f - mean) for f in features) / (30 - 1)
    np.testing.assert_allclose(mu, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sigma, cov, rtol=1e-4, atol=1e-6)


def test_fid_of_two_samples_of_known_gaussians():
    # Features drawn from N(0, I) and N(m, 4 I) in d = 3: d^2 = |m|^2 + 3 (1 - 2)^2.
    # m = (1, 1, 1): 3 + 3 = 6. With 20000 samples the estimate is within a few percent.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20000, 3))
    y = 1.0 + 2.0 * rng.normal(size=(20000, 3))
    got = fid.frechet_distance(*fid.feature_statistics(None, x), *fid.feature_statistics(None, y))
    assert got == pytest.approx(6.0, rel=0.05)


def test_feature_statistics_needs_two_images():
    with pytest.raises(ValueError, match="Received: 1"):
        fid.feature_statistics(None, np.zeros((1, 3)))


TINY = {"filters": (2, 4), "dense_units": 8, "epochs": 1, "batch_size": 64}


def test_classifier_is_trained_once_then_loaded_from_the_cache(tmp_path, monkeypatch):
    import mp.data

    images = mp.data.load_numpy("digits", "test")[0].astype(np.float32) / 255.0
    first = fid.fid_classifier(images[:100], "digits", cache_dir=str(tmp_path), **TINY)
    path = fid.cache_path("digits", str(tmp_path), **TINY)
    assert os.path.exists(path) and os.path.exists(path[: -len(".keras")] + ".json")
    assert sorted(os.listdir(tmp_path)) == sorted(
        [os.path.basename(path), os.path.basename(path)[: -len(".keras")] + ".json"]
    )  # no temporary files left behind

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded")

    monkeypatch.setattr(fid, "train_classifier", no_training)
    fid._EXTRACTORS.clear()  # force a load from disk
    again = fid.fid_classifier(images[:100], "digits", cache_dir=str(tmp_path), **TINY)
    assert again == pytest.approx(first, rel=1e-5)
    # Real images against themselves are at distance 0; uniform noise is far away.
    same = fid.fid_classifier(images, "digits", real_images=images, cache_dir=str(tmp_path), **TINY)
    assert same == pytest.approx(0.0, abs=1e-6)
    noise = np.random.default_rng(0).uniform(size=(100, 8, 8, 1))
    assert fid.fid_classifier(noise, "digits", cache_dir=str(tmp_path), **TINY) > first
    floor = fid.real_floor("digits", 100, cache_dir=str(tmp_path), **TINY)
    assert 0.0 < floor < fid.fid_classifier(noise, "digits", cache_dir=str(tmp_path), **TINY)


def test_fid_classifier_rejects_wrong_image_shape(tmp_path):
    with pytest.raises(ValueError, match=r"Received: \(4, 28, 28, 1\)"):
        fid.fid_classifier(np.zeros((4, 28, 28, 1)), "digits", cache_dir=str(tmp_path), **TINY)


def test_report_scores_as_many_samples_as_the_floor_has_real_images(tmp_path):
    held = fid.held_out_images("digits")
    assert len(held) == fid.sample_count("digits", 10**6)  # capped at the held-out images
    assert fid.sample_count("digits", 40) == 40
    noise = np.random.default_rng(1).uniform(size=(len(held) + 25, 8, 8, 1))
    values = fid.report(noise, "digits", cache_dir=str(tmp_path), **TINY)
    assert values["fid_samples"] == len(held)
    # The extra 25 samples are dropped, and the floor uses the same count.
    expected = fid.fid_classifier(noise[: len(held)], "digits", cache_dir=str(tmp_path), **TINY)
    assert values["fid_classifier"] == pytest.approx(expected, rel=1e-6)
    floor = fid.real_floor("digits", len(held), cache_dir=str(tmp_path), **TINY)
    assert values["fid_real_floor"] == pytest.approx(floor, rel=1e-6)
    assert 0.0 < values["fid_real_floor"] < values["fid_classifier"]


def test_report_of_draws_the_samples_in_batches_and_scores_them_as_report_does(tmp_path):
    rng = np.random.default_rng(2)
    calls = []

    def sample(n):
        calls.append(n)
        return rng.uniform(size=(n, 8, 8, 1))

    values = fid.report_of(sample, "digits", 45, sample_batch=20, cache_dir=str(tmp_path), **TINY)
    assert calls == [20, 20, 5] and values["fid_samples"] == 45
    rng = np.random.default_rng(2)
    again = fid.report(rng.uniform(size=(45, 8, 8, 1)), "digits", cache_dir=str(tmp_path), **TINY)
    assert values == again
    calls.clear()
    fid.report_of(sample, "digits", 10**6, cache_dir=str(tmp_path), **TINY)
    assert calls == [fid.sample_count("digits", 10**6)]  # one call, capped at the floor's


def test_summary_names_every_fid_and_the_floor():
    values = {
        "fid_classifier": 12.345,
        "fid_classifier_true_samples": 3.0,
        "fid_real_floor": 0.5,
        "fid_samples": 136,
        "fid_reference": "digits test split",
    }
    assert fid.summary(values) == (
        "FID (classifier features, 136 images) 12.35, true samples 3.00, real-data floor 0.50"
    )

"""Sample quality without Inception weights: a Fréchet distance on our own classifier's features.

The Fréchet Inception Distance (FID) of Heusel et al. 2017, "GANs Trained by a
Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", fits one
Gaussian to the features of real images and one to the features of generated
images and reports the Fréchet (2-Wasserstein) distance between the two:

    d^2 = |mu_1 - mu_2|^2 + Tr(Sigma_1 + Sigma_2 - 2 (Sigma_1 Sigma_2)^(1/2))

Lower is better; 0 means the two feature distributions have the same mean and
covariance. The original uses the pool features of an ImageNet Inception
network. This machine has no such weights and our images are small and grey,
so the features here come from the penultimate (dense) layer of the course's
classic CNN (`mp.cnn.get_model("classic_cnn", ...)`) trained on the dataset's
own training split. The numbers are therefore comparable between models
scored with the same classifier, not with published FIDs.

The classifier is trained once per dataset and kept in a cache folder
(`cache_dir`, else `$MP_CACHE_DIR`, else `~/.cache/mp/`). It trains on the
training split minus a fixed, stratified 10% (`mp.data.load_numpy(...,
validation_fraction=0.1)`); those held-out images, unseen by the classifier,
give the real-data floor `real_floor(...)`: the FID of real images against
the test split, with as many images as the samples being scored (the FID of
a finite sample is biased upwards, more so for fewer images, so compare
equal counts).

`report(samples, dataset)` (or `report_of(sample_fn, dataset, n)`, which draws
the samples) gives the FID entries the generative apps write to `metrics.json`;
`summary(...)` says them in one line.

Course: ch5 Deep Generative Models, ch5.2.4 Training GANs (judging samples).
"""

import json
import os
import tempfile
import time

import keras
import numpy as np

VALIDATION_FRACTION = 0.1
# 16 and 32 channels instead of the classic 32 and 64: eight times faster here, about a minute
# on Fashion-MNIST for three epochs on two busy CPU cores, and still about 90% accurate. The
# 8x8 digits are few (1,211 training images): 30 epochs there, a few seconds.
DEFAULT_CLASSIFIER = {"filters": (16, 32), "dense_units": 128, "epochs": None, "batch_size": 128}
DEFAULT_EPOCHS = {"digits": 30}  # other datasets: 3


def _config(dataset, config):
    """`DEFAULT_CLASSIFIER` with `config`'s overrides and the dataset's default epochs."""
    config = {**DEFAULT_CLASSIFIER, **config}
    if config["epochs"] is None:
        config["epochs"] = DEFAULT_EPOCHS.get(dataset, 3)
    return config


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Fréchet distance between `N(mu1, sigma1)` and `N(mu2, sigma2)`.

    `Tr((Sigma_1 Sigma_2)^(1/2))` is computed through symmetric matrices:
    with `S = Sigma_1^(1/2)`, the product `Sigma_1 Sigma_2` is similar to the
    symmetric positive semi-definite `S Sigma_2 S`, so both have the same
    eigenvalues `lambda_i >= 0` and the trace is `sum_i sqrt(lambda_i)`. Two
    `eigh` calls replace a general matrix square root and never return
    complex numbers.

    Args:
      mu1, mu2: means, shape `[d]`.
      sigma1, sigma2: covariances, shape `[d, d]`, symmetric positive
        semi-definite.

    Returns:
      The squared Fréchet distance as a Python float (>= 0 up to rounding).

    Raises:
      ValueError: if the shapes do not fit together.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(
        np.asarray(mu2, np.float64)
    )
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            "expected means of shape [d] and covariances of shape [d, d]. Received: "
            f"mu1 {mu1.shape}, sigma1 {sigma1.shape}, mu2 {mu2.shape}, sigma2 {sigma2.shape}"
        )
    sqrt_sigma1 = _sqrtm_psd(sigma1)
    eigenvalues = np.linalg.eigvalsh(sqrt_sigma1 @ sigma2 @ sqrt_sigma1)
    trace_sqrt_product = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product)


def _sqrtm_psd(matrix):
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def feature_statistics(extractor, images, batch_size=500):
    """Mean and covariance of `extractor`'s features over `images`.

    Args:
      extractor: a function (e.g. a `keras.Model`) mapping a float32 batch
        `[B, ...]` to features `[B, d]`; or `None` when `images` already are
        the features `[N, d]`.
      images: an array `[N, ...]` (N >= 2).
      batch_size: images per call of `extractor`.

    Returns:
      `(mu, sigma)`: the feature mean `[d]` and the unbiased covariance
      `[d, d]` (divided by `N - 1`), float64.

    Raises:
      ValueError: for fewer than two images.
    """
    images = np.asarray(images)
    if len(images) < 2:
        raise ValueError(f"need at least 2 images for a covariance. Received: {len(images)}")
    if extractor is None:
        features = images.reshape(len(images), -1)
    else:
        features = np.concatenate(
            [
                np.asarray(extractor(images[i : i + batch_size].astype(np.float32)))
                for i in range(0, len(images), batch_size)
            ]
        )
    features = features.astype(np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def cache_path(dataset, cache_dir=None, **config):
    """Where the feature classifier of `dataset` with `config` is (or will be) saved."""
    config = _config(dataset, config)
    folder = cache_dir or os.environ.get("MP_CACHE_DIR") or os.path.expanduser("~/.cache/mp")
    tag = "f{}-{}_d{}_e{}".format(*config["filters"], config["dense_units"], config["epochs"])
    return os.path.join(os.fspath(folder), f"fid_classifier_{dataset}_{tag}.keras")


def train_classifier(dataset, *, data_dir=None, seed=0, verbose=True, **config):
    """Trains the classic CNN whose dense features the FID uses.

    Args:
      dataset: a `mp.data` dataset name.
      data_dir: where to look for the dataset's files.
      seed: seed of the initialisation and the data order.
      verbose: print one line saying what it does, and one with the result.
      **config: overrides of `DEFAULT_CLASSIFIER` (`filters`, `dense_units`,
        `epochs`, `batch_size`).

    Returns:
      `(model, info)`: the classifier (logits) and a dict with its held-out
      accuracy and training time.
    """
    import mp.cnn
    import mp.data

    config = _config(dataset, config)
    images, labels = mp.data.load_numpy(
        dataset, "train", data_dir, validation_fraction=VALIDATION_FRACTION
    )
    held_images, held_labels = mp.data.load_numpy(
        dataset, "validation", data_dir, validation_fraction=VALIDATION_FRACTION
    )
    if verbose:
        print(
            f"fid: training the feature classifier (classic_cnn, filters {config['filters']}, "
            f"dense {config['dense_units']}) on {dataset} for {config['epochs']} epochs, once; "
            "it is cached for later runs",
            flush=True,
        )
    from mp.engine.precision import precision_scope

    keras.utils.set_random_seed(seed)
    start = time.time()
    # The FID's instrument is the same in every run: float32, whatever policy the run
    # that trains it first uses (the saved file keeps it: layers record their policy).
    with precision_scope("float32"):
        model = mp.cnn.get_model(
            "classic_cnn",
            input_shape=images.shape[1:],
            num_classes=10,
            filters=tuple(config["filters"]),
            dense_units=config["dense_units"],
        )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        images.astype(np.float32) / 255.0,
        labels,
        batch_size=config["batch_size"],
        epochs=config["epochs"],
        shuffle=True,
        verbose=0,
    )
    _, accuracy = model.evaluate(
        held_images.astype(np.float32) / 255.0, held_labels, batch_size=500, verbose=0
    )
    info = {"held_out_accuracy": float(accuracy), "train_seconds": time.time() - start, **config}
    info["filters"] = list(config["filters"])
    if verbose:
        print(
            f"fid: classifier trained in {info['train_seconds']:.0f} s, held-out accuracy "
            f"{accuracy:.3f}",
            flush=True,
        )
    return model, info


def load_extractor(dataset, *, cache_dir=None, data_dir=None, **config):
    """The feature extractor of `dataset`: the dense features of `load_classifier`'s model.

    Args: as for `load_classifier`.

    Returns:
      A `keras.Model` mapping images in [0, 1] to their dense features.
    """
    classifier = load_classifier(dataset, cache_dir=cache_dir, data_dir=data_dir, **config)
    return keras.Model(classifier.input, classifier.get_layer("dense").output)


def load_classifier(dataset, *, cache_dir=None, data_dir=None, **config):
    """The FID's classifier of `dataset` (logits): loaded from the cache, else trained and cached.

    The classifier is saved atomically (a temporary file renamed into place),
    with its held-out accuracy in a `.json` next to it, so an interrupted
    training never leaves a half-written model behind.

    Args:
      dataset: a `mp.data` dataset name.
      cache_dir: the cache folder; default `$MP_CACHE_DIR` or `~/.cache/mp/`.
      data_dir: where to look for the dataset's files.
      **config: overrides of `DEFAULT_CLASSIFIER`.

    Returns:
      A `keras.Model` mapping images in [0, 1] to class logits (translations are
      judged by it: `mp.generative.translation`).
    """
    path = cache_path(dataset, cache_dir, **config)
    if os.path.exists(path):
        classifier = keras.saving.load_model(path)
    else:
        classifier, info = train_classifier(dataset, data_dir=data_dir, **config)
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=folder, suffix=".keras")
        os.close(handle)
        try:
            classifier.save(tmp)
            with open(tmp[: -len(".keras")] + ".json", "w") as f:
                json.dump(info, f, indent=2)
            os.replace(tmp[: -len(".keras")] + ".json", path[: -len(".keras")] + ".json")
            os.replace(tmp, path)
        finally:
            for leftover in (tmp, tmp[: -len(".keras")] + ".json"):
                if os.path.exists(leftover):
                    os.remove(leftover)
    return classifier


_EXTRACTORS = {}  # one extractor per classifier file and data folder
_TEST_STATISTICS = {}  # the test split's feature statistics, computed once per extractor


def _extractor(dataset, cache_dir, data_dir, config):
    key = (cache_path(dataset, cache_dir, **config), data_dir)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = load_extractor(dataset, cache_dir=cache_dir, data_dir=data_dir, **config)
        _TEST_STATISTICS.pop(key, None)
    return _EXTRACTORS[key]


def _test_statistics(dataset, cache_dir, data_dir, config):
    """`feature_statistics` of the test split, kept for the next call with the same extractor."""
    import mp.data

    extractor = _extractor(dataset, cache_dir, data_dir, config)
    key = (cache_path(dataset, cache_dir, **config), data_dir)
    if key not in _TEST_STATISTICS:
        test = mp.data.load_numpy(dataset, "test", data_dir)[0].astype(np.float32) / 255.0
        _TEST_STATISTICS[key] = feature_statistics(extractor, _as_images(test, dataset))
    return _TEST_STATISTICS[key]


def _as_images(images, dataset):
    """Checks and converts images to float32 `[N, H, W, 1]` in [0, 1]."""
    import mp.data

    shape = tuple(mp.data.info(dataset).image_shape)
    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.shape[1:] != shape:
        raise ValueError(
            f"images must have shape [N, {', '.join(map(str, shape))}] for {dataset}. "
            f"Received: {images.shape}"
        )
    return images


def fid_classifier(images, dataset, *, real_images=None, cache_dir=None, data_dir=None, **config):
    """Classifier-feature FID of `images` against real images of `dataset`.

    Args:
      images: samples `[N, H, W(, 1)]` with pixels in [0, 1] (N >= 2).
      dataset: the `mp.data` dataset they imitate (`digits`, `fashion_mnist`, ...).
      real_images: the reference images in [0, 1]; default the dataset's test
        split.
      cache_dir: the classifier's cache folder (see `load_extractor`).
      data_dir: where to look for the dataset's files.
      **config: overrides of `DEFAULT_CLASSIFIER` (tests use a tiny one).

    Returns:
      The FID as a float.
    """
    images = _as_images(images, dataset)
    extractor = _extractor(dataset, cache_dir, data_dir, config)
    if real_images is None:
        reference = _test_statistics(dataset, cache_dir, data_dir, config)
    else:
        reference = feature_statistics(extractor, _as_images(real_images, dataset))
    return frechet_distance(*feature_statistics(extractor, images), *reference)


def held_out_images(dataset, num_images=None, *, data_dir=None):
    """The first `num_images` (default all) of the classifier's held-out images, in [0, 1].

    They are the fixed, stratified 10% of the training split that the classifier
    never trains on (`VALIDATION_FRACTION`).
    """
    import mp.data

    held = mp.data.load_numpy(
        dataset, "validation", data_dir, validation_fraction=VALIDATION_FRACTION
    )[0]
    return held[:num_images].astype(np.float32) / 255.0


def real_floor(dataset, num_images, *, cache_dir=None, data_dir=None, **config):
    """The FID of `num_images` real held-out images against the test split.

    The images are the first `num_images` of the classifier's held-out 10% of
    the training split (at most that many). Samples scored with the same
    count cannot be expected to do better than this.
    """
    held = held_out_images(dataset, num_images, data_dir=data_dir)
    return fid_classifier(held, dataset, cache_dir=cache_dir, data_dir=data_dir, **config)


def sample_count(dataset, num_samples, *, data_dir=None):
    """How many samples to score: `num_samples`, at most the held-out images of the floor.

    A finite sample's FID is biased upwards, the more so the smaller it is, so
    samples and floor must use the same count to be comparable.
    """
    return min(num_samples, len(held_out_images(dataset, data_dir=data_dir)))


def report(samples, dataset, *, cache_dir=None, data_dir=None, **config):
    """The FID entries of an app's `metrics.json` for `samples` of `dataset`.

    Args:
      samples: generated images in [0, 1]; only the first `sample_count(...)` are
        scored, so that the floor has as many real images.
      dataset, cache_dir, data_dir, **config: as for `fid_classifier`.

    Returns:
      `fid_classifier` (the samples against the test split), `fid_real_floor`
      (as many held-out real images against the test split), `fid_samples`
      (that count) and `fid_reference`.
    """
    count = sample_count(dataset, len(samples), data_dir=data_dir)
    samples = samples[:count]
    return {
        "fid_classifier": fid_classifier(
            samples, dataset, cache_dir=cache_dir, data_dir=data_dir, **config
        ),
        "fid_real_floor": real_floor(
            dataset, count, cache_dir=cache_dir, data_dir=data_dir, **config
        ),
        "fid_samples": count,
        "fid_reference": f"{dataset} test split",
    }


def report_of(
    sample, dataset, num_samples, *, sample_batch=None, cache_dir=None, data_dir=None, **config
):
    """`report` of a generative model's samples: what both generative apps write.

    Args:
      sample: `count -> images [count, H, W(, 1)]` in [0, 1], the model's samples.
      dataset: the `mp.data` dataset the model imitates.
      num_samples: how many samples to score; at most the held-out images of the floor
        (`sample_count`), so that samples and floor are scored with as many images.
      sample_batch: draw the samples `sample_batch` at a time (`sample` must then draw
        new images at each call); `None` draws them in one call.
      cache_dir, data_dir, **config: as for `fid_classifier`.

    Returns:
      The dict of `report`.
    """
    count = sample_count(dataset, num_samples, data_dir=data_dir)
    step = sample_batch or count
    samples = np.concatenate(
        [np.asarray(sample(min(step, count - i))) for i in range(0, count, step)]
    )
    return report(samples, dataset, cache_dir=cache_dir, data_dir=data_dir, **config)


def summary(values):
    """One line of the FID entries of `report` (and of any other `fid_classifier_<what>`)."""
    others = "".join(
        f", {key[len('fid_classifier_'):].replace('_', ' ')} {value:.2f}"
        for key, value in sorted(values.items())
        if key.startswith("fid_classifier_")
    )
    return (
        f"FID (classifier features, {values['fid_samples']} images) "
        f"{values['fid_classifier']:.2f}{others}, real-data floor {values['fid_real_floor']:.2f}"
    )

"""Train a variational autoencoder: `python -m apps.train_vae --flagfile=flags/vae_dense_digits.cfg`.

    images in [0, 1] (mp.data, dynamically binarised) -> VAE (mp.generative.vae)
    -> VAETask -> Trainer -> model.keras, reconstructions.png, samples_mean.png,
    samples.png, latent.png, learning_curves.png -> metrics.json

Training maximises the ELBO; each time a training image is seen its pixels are
redrawn as Bernoulli(grey level) (dynamic binarisation, seeded by the step, so
a resumed run sees the same bits). The test images are binarised once, with a
fixed seed. `metrics.json` reports the test ELBO with its `rate` and
`distortion`, and `nll_nats`: minus the importance-weighted bound with
`iwae_k` samples on the first `iwae_examples` test images, an upper bound on
the test negative log-likelihood in nats. With `--fid`, the classifier-feature
FID (mp.generative.fid) of decoder-mean samples, of true samples and of real
held-out images (the floor).

Course: ch5.1 Variational Autoencoders, ch7.2 Reparametrization trick.
"""

import os

import numpy as np
from absl import flags

from apps import common, common_flags
from mp.plotting import pyplot

FLAGS = flags.FLAGS
common_flags.define(dataset="digits", batch_size=64, epochs=50, learning_rate=1e-3)
common_flags.define_once(
    flags.DEFINE_string, "model", "dense", "Encoder/decoder architecture: dense or conv."
)
common_flags.define_once(
    flags.DEFINE_integer, "latent_dim", 2, "Size of the latent code z.", lower_bound=1
)
common_flags.define_once(
    flags.DEFINE_enum,
    "likelihood",
    "bernoulli",
    ["bernoulli", "gaussian", "continuous_bernoulli"],
    "Pixel distribution p(x|z) of the decoder.",
)
common_flags.define_once(
    flags.DEFINE_list,
    "hidden_units",
    ["256"],
    "Widths of the hidden dense layers (dense: all; conv: after the convolutions).",
)
common_flags.define_once(
    flags.DEFINE_list, "filters", ["32", "64"], "Channels of the two convolutions (conv)."
)
common_flags.define_once(
    flags.DEFINE_integer,
    "iwae_k",
    1000,
    "Importance samples per test image for the NLL bound.",
    lower_bound=1,
)
common_flags.define_once(
    flags.DEFINE_integer,
    "iwae_examples",
    1000,
    "How many test images get the k-sample bound (it costs k decoder passes each).",
    lower_bound=1,
)
common_flags.define_once(
    flags.DEFINE_enum,
    "binarize",
    "dynamic",
    ["dynamic", "none"],
    "dynamic: pixels redrawn as Bernoulli(grey level) each time; none: grey levels.",
)
common_flags.define_once(
    flags.DEFINE_boolean,
    "fid",
    None,
    "Compute the classifier-feature FID of samples (trains and caches a classifier the "
    "first time). Default: on for fashion_mnist and mnist, off for digits.",
)
common_flags.define_fid()

MODEL_FLAGS = (
    "model",
    "latent_dim",
    "likelihood",
    "hidden_units",
    "filters",
    "iwae_k",
    "iwae_examples",
    "binarize",
    "fid",
    "fid_samples",
    "fid_cache_dir",
)
EVAL_BATCH_SIZE = 500
IWAE_BATCH = 8  # test images per IWAE call; chunks of samples keep memory bounded
TEST_BINARIZATION_SEED = 12345
GRID = 8  # samples.png and samples_mean.png are GRID x GRID


def binarize_batch(images, seed, step):
    """Bernoulli(grey level) pixels, a stateless draw keyed by `(seed, step)`."""
    import tensorflow as tf

    uniform = tf.random.stateless_uniform(tf.shape(images), seed=tf.stack([seed, step]))
    return tf.cast(uniform < images, images.dtype)


def evaluation_images(images, binarize):
    """uint8 test images -> float32 in [0, 1], binarised once with a fixed seed if `dynamic`.

    The seed is the same for every run, so every model is scored on the same bits.
    """
    x = images.astype(np.float32) / 255.0
    if binarize == "dynamic":
        uniform = np.random.default_rng(TEST_BINARIZATION_SEED).uniform(size=x.shape)
        x = (uniform < x).astype(np.float32)
    return x


def run(
    model_dir=None,
    *,
    model="dense",
    latent_dim=2,
    likelihood="bernoulli",
    hidden_units=(256,),
    filters=(32, 64),
    iwae_k=1000,
    iwae_examples=1000,
    binarize="dynamic",
    fid=None,
    fid_samples=5000,
    fid_cache_dir=None,
    dataset="digits",
    data_dir=None,
    batch_size=64,
    epochs=50,
    train_steps=0,
    learning_rate=1e-3,
    optimizer="adam",
    optimizer_impl="keras",
    lr_schedule="constant",
    warmup_steps=0,
    clip_norm=0.0,
    seed=0,
    deterministic=False,
    strategy="default",
    jit_compile=False,
    log_every=100,
    checkpoint_every=1000,
    eval_every=0,
    early_stopping_patience=0,
    validation_fraction=0.0,
    augment=False,
    log_diagnostics=False,
    progress=True,
):
    """Trains a VAE on `dataset`; returns the metrics written to metrics.json.

    Args:
      model_dir: output directory (default `runs/train_vae-<dataset>`).
      model: `dense` or `conv` (`mp.generative.autoencoder.make_encoder`).
      latent_dim: size of z; 2 draws a latent traversal.
      likelihood: `bernoulli`, `gaussian` or `continuous_bernoulli`.
      hidden_units, filters: sizes of the encoder and decoder.
      iwae_k: importance samples per test image for `nll_nats`.
      iwae_examples: how many test images get the k-sample bound.
      binarize: `dynamic` or `none`.
      fid: compute the classifier-feature FID; `None` means on except for digits.
      fid_samples: samples the FID scores (at most the classifier's held-out images,
        which give the floor with as many).
      fid_cache_dir: cache of the FID's classifier.
      The rest: see `apps/common_flags.py`. `augment` and `log_diagnostics`
      are classification options; setting them is an error.

    Returns:
      The metrics dict: `elbo`, `rate`, `distortion`, `nll_nats`, `iwae_k`,
      `fid_classifier` (with `--fid`), `global_step`, `wall_seconds`, ...
    """
    hparams = {k: v for k, v in locals().items() if k != "progress"}
    clock = common.Clock()
    import mp.data
    from apps.classifier import _optimizer

    # --- check everything before writing anything -----------------------
    hidden_units = common.positive_ints("hidden_units", hidden_units)
    filters = common.positive_ints("filters", filters, count=2)
    hparams.update(hidden_units=hidden_units, filters=filters)
    common.check_counts(
        batch_size=batch_size,
        epochs=epochs,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        latent_dim=latent_dim,
        iwae_k=iwae_k,
        iwae_examples=iwae_examples,
        fid_samples=fid_samples,
    )
    common.check_non_negative(
        train_steps=train_steps,
        eval_every=eval_every,
        early_stopping_patience=early_stopping_patience,
    )
    common.check_positive(learning_rate=learning_rate)
    common.check_optimizer_impl(optimizer_impl)
    for name, value, choices in (
        ("model", model, ("dense", "conv")),
        ("likelihood", likelihood, ("bernoulli", "gaussian", "continuous_bernoulli")),
        ("binarize", binarize, ("dynamic", "none")),
    ):
        if value not in choices:
            raise ValueError(
                f"{name} must be one of {', '.join(choices)}. Received: {name}={value!r}"
            )
    if likelihood == "bernoulli" and binarize == "none":
        raise ValueError(
            "likelihood=bernoulli is a distribution over 0/1 pixels, so on grey levels its "
            "log_prob is no likelihood and nll_nats no NLL; use --binarize=dynamic, or "
            "--likelihood=continuous_bernoulli (or gaussian) for grey levels"
        )
    if likelihood == "gaussian" and binarize == "dynamic":
        raise ValueError(
            "likelihood=gaussian on binarised pixels drives the decoder's scale to zero and "
            "the likelihood to infinity; use --binarize=none with it"
        )
    common.check_unsupported("train_vae", augment=augment, log_diagnostics=log_diagnostics)
    if early_stopping_patience and not (eval_every and validation_fraction):
        raise ValueError(
            "early_stopping_patience needs eval_every > 0 and validation_fraction > 0: early "
            "stopping compares validation bounds, never test ones"
        )
    info = mp.data.info(dataset)
    if model == "conv" and (info.image_shape[0] % 4 or info.image_shape[1] % 4):
        raise ValueError(
            f"model=conv needs an image side divisible by 4; {dataset} is {info.image_shape}"
        )
    train_images, _ = mp.data.load_numpy(
        dataset, "train", data_dir, validation_fraction=validation_fraction
    )
    test_images, test_labels = mp.data.load_numpy(dataset, "test", data_dir)
    steps_per_epoch = len(train_images) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"batch_size {batch_size} exceeds the {len(train_images)} training examples of {dataset}"
        )
    iwae_examples = min(iwae_examples, len(test_images))
    fid = dataset != "digits" if fid is None else fid
    train_steps = train_steps or epochs * steps_per_epoch
    model_dir = model_dir or common.default_model_dir("train_vae", dataset)
    hparams.update(model_dir=model_dir, fid=fid)

    import tensorflow as tf

    from mp.engine import Trainer, make_schedule, make_strategy, seed_everything
    from mp.generative.vae import VAETask, make_vae

    seed_everything(seed, deterministic)
    strategy = make_strategy(strategy)
    schedule = make_schedule(lr_schedule, learning_rate, train_steps, warmup_steps=warmup_steps)
    with strategy.scope():
        vae = make_vae(
            info.image_shape,
            latent_dim,
            kind=model,
            likelihood=likelihood,
            hidden_units=hidden_units,
            filters=filters,
            seed=seed,
        )
    task = VAETask(
        vae, lambda: _optimizer(optimizer, optimizer_impl, schedule), clip_norm=clip_norm or None
    )
    dynamic = binarize == "dynamic"

    def images_only(images, labels):
        del labels
        return images

    def binarize_indexed(index, batch):
        return binarize_batch(batch[0], tf.constant(seed, tf.int64), index)

    def prepare(data, start):
        """Binarises batch `i` (counted from `start`) with the stateless seed `(seed, i)`."""
        if not dynamic:
            return data.map(images_only)
        return data.enumerate(start).map(binarize_indexed)

    def train_data(start_step):
        """The same batches and the same bits, in the same order, from any step on."""
        data = mp.data.load(
            dataset,
            "train",
            data_dir,
            batch_size=batch_size,
            shuffle=True,
            seed=seed,
            repeat=True,
            skip_batches=start_step,
            drop_remainder=True,
            standardize=False,
            validation_fraction=validation_fraction,
            prefetch=False,
        )
        return prepare(data, start_step).prefetch(2)

    test_x = evaluation_images(test_images, binarize)
    test_data = tf.data.Dataset.from_tensor_slices(test_x).batch(EVAL_BATCH_SIZE)
    validation_data = (
        prepare(
            mp.data.load(
                dataset,
                "validation",
                data_dir,
                batch_size=EVAL_BATCH_SIZE,
                standardize=False,
                validation_fraction=validation_fraction,
            ),
            0,
        )
        if validation_fraction
        else None
    )

    # --- train ------------------------------------------------------------
    trainer = Trainer(
        task,
        model_dir,
        train_steps=train_steps,
        strategy=strategy,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        eval_every=eval_every,
        jit_compile=jit_compile,
        early_stopping_patience=early_stopping_patience,
        early_stopping_metric="loss",
        progress=progress,
    )
    common.start_run(model_dir, hparams, trainer.resumed_from_step, progress)
    result = trainer.fit(train_data, validation_data or test_data)
    evaluation = trainer.evaluate(test_data) if validation_data else result["eval"]

    # --- the importance-weighted bound on the first iwae_examples test images ----
    tic = clock.seconds()
    iwae = iwae_bounds(task.model, test_x[:iwae_examples], iwae_k, seed=seed)
    iwae_seconds = clock.seconds() - tic

    # --- artifacts, metrics.json last ---------------------------------------
    common.save_model(task.model, os.path.join(model_dir, "model.keras"))
    save_figures(task.model, model_dir, test_x, test_labels, info, trainer.history, seed=seed)
    common.write_json(os.path.join(model_dir, "history.json"), common.history_json(trainer.history))
    metrics = {
        "app": "train_vae",
        "dataset": dataset,
        "model": task.model.name,
        "likelihood": likelihood,
        "binarize": binarize,
        "latent_dim": latent_dim,
        "num_parameters": int(task.model.count_params()),
        "global_step": result["global_step"],
        "train_steps": train_steps,
        "epochs": round(result["global_step"] / steps_per_epoch, 3),
        "resumed_from_step": result["resumed_from_step"],
        "stopped_early": result["stopped_early"],
        "elbo": evaluation["elbo"],
        "rate": evaluation["rate"],
        "distortion": evaluation["distortion"],
        "test_examples": evaluation["count"],
        "nll_nats": float(-np.mean(iwae)),
        "iwae_k": iwae_k,
        "iwae_examples": iwae_examples,
        "iwae_seconds": iwae_seconds,
        "train_elbo": result["train"].get("metrics/elbo"),
        "train_seconds": result["wall_seconds"],
        "num_replicas": strategy.num_replicas_in_sync,
    }
    if fid:
        binarized_test = test_x if dynamic else None
        metrics.update(
            fid_metrics(
                task.model,
                dataset,
                data_dir,
                fid_samples,
                seed,
                progress,
                binarized_test,
                cache_dir=fid_cache_dir,
            )
        )
    metrics["wall_seconds"] = clock.seconds()
    common.write_json(os.path.join(model_dir, "metrics.json"), metrics)
    if progress:
        fid_text = f", FID {metrics['fid_classifier']:.2f}" if fid else ""
        print(
            f"test ELBO {metrics['elbo']:.2f} nats (rate {metrics['rate']:.2f}, distortion "
            f"{metrics['distortion']:.2f}), NLL <= {metrics['nll_nats']:.2f} nats (IWAE k="
            f"{iwae_k} on {iwae_examples} images){fid_text} after {metrics['global_step']} steps, "
            f"{metrics['wall_seconds']:.1f} s; artifacts in {model_dir}/",
            flush=True,
        )
    return metrics


def iwae_bounds(model, images, k, *, seed=0, batch=IWAE_BATCH):
    """The k-sample importance-weighted bound of each image, as a NumPy array (nats).

    `batch` test images per call, each with `chunk_size` of its k samples decoded at once
    (about 4096 images per chunk), so memory stays bounded for any k.
    """
    import tensorflow as tf

    chunk_size = max(1, min(k, 4096 // batch))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, *images.shape[1:]], tf.float32),
            tf.TensorSpec([], tf.int64),
        ]
    )
    def bound(x, index):
        return model.iwae_bound(
            x, k, chunk_size=chunk_size, seed=tf.cast(seed, tf.int64) * 1_000_003 + index
        )

    return np.concatenate(
        [
            bound(images[i : i + batch], tf.constant(i, tf.int64)).numpy()
            for i in range(0, len(images), batch)
        ]
    )


def fid_metrics(
    model, dataset, data_dir, num_samples, seed, progress, binarized_test=None, cache_dir=None
):
    """Classifier-feature FIDs against the test split (mp.generative.fid).

    `fid_classifier`: decoder means `E[x | z]` against the grey-level test images (the
    pictures usually shown). `fid_classifier_true_samples`: true samples `x ~ p(x | z)`
    against `binarized_test` if given (binary against binary), else the grey levels.
    `fid_real_floor`: as many real held-out images against the test split.
    """
    from mp.generative import fid

    count = fid.sample_count(dataset, num_samples, data_dir=data_dir)
    means = model.sample(count, seed=seed, mean=True).numpy()
    draws = model.sample(count, seed=seed, mean=False).numpy()
    values = fid.report(means, dataset, cache_dir=cache_dir, data_dir=data_dir)
    values["fid_classifier_true_samples"] = fid.fid_classifier(
        draws, dataset, real_images=binarized_test, cache_dir=cache_dir, data_dir=data_dir
    )
    if progress:
        print(
            f"FID (classifier features, {count} images): decoder means "
            f"{values['fid_classifier']:.2f}, true samples "
            f"{values['fid_classifier_true_samples']:.2f}, real held-out images "
            f"{values['fid_real_floor']:.2f}",
            flush=True,
        )
    return values


# --- figures ------------------------------------------------------------------


def _tile(images, rows, cols):
    """`[rows * cols, H, W, 1]` -> one `[rows * H, cols * W]` picture with 1-pixel gaps."""
    n, h, w = images.shape[:3]
    canvas = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), 0.5)  # grey gaps
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = images[i, ..., 0]
    return canvas


def _grid_figure(picture, title, size=5.0):
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(size, size * picture.shape[0] / picture.shape[1] + 0.4))
    axis.imshow(picture, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axis.set_axis_off()
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    plt.close(figure)
    return figure


def save_figures(model, model_dir, test_x, test_labels, info, history, *, seed=0, n_recon=12):
    """Writes reconstructions, samples (means and draws), latent space and learning curves."""
    x = test_x[:n_recon]
    recon = model(x).numpy()
    common.save_figure(
        _grid_figure(
            _tile(np.concatenate([x, recon]), 2, n_recon),
            "test images (top) and reconstructions E[x | z = mu(x)] (bottom)",
            size=9,
        ),
        os.path.join(model_dir, "reconstructions.png"),
    )
    means = model.sample(GRID * GRID, seed=seed, mean=True).numpy()
    draws = model.sample(GRID * GRID, seed=seed, mean=False).numpy()
    common.save_figure(
        _grid_figure(_tile(means, GRID, GRID), "decoder means E[x | z], z ~ p(z)"),
        os.path.join(model_dir, "samples_mean.png"),
    )
    common.save_figure(
        _grid_figure(_tile(draws, GRID, GRID), "true samples x ~ p(x | z), same z"),
        os.path.join(model_dir, "samples.png"),
    )
    common.save_figure(
        latent_figure(model, test_x, test_labels, info), os.path.join(model_dir, "latent.png")
    )
    if len(history["train"]) > 1:
        common.save_figure(learning_curves(history), os.path.join(model_dir, "learning_curves.png"))


def latent_figure(model, images, labels, info, max_points=2000, traversal=15):
    """Posterior means of test images coloured by class (PCA of them if latent_dim > 2).

    With a 2-D latent space a second panel decodes a grid of z over the prior's
    5%-95% quantiles (a latent traversal).
    """
    from scipy.stats import norm

    plt = pyplot()
    loc, _ = model.posterior_params(images[:max_points])
    loc = loc.numpy()
    labels = labels[:max_points]
    two_d = model.latent_dim == 2
    if model.latent_dim > 2:
        centred = loc - loc.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        points, names = centred @ vt[:2].T, ("PC 1 of mu(x)", "PC 2 of mu(x)")
    elif model.latent_dim == 2:
        points, names = loc, ("z_1", "z_2")
    else:
        points, names = np.concatenate([loc, np.zeros_like(loc)], axis=1), ("z_1", "")
    figure, axes = plt.subplots(
        1, 2 if two_d else 1, figsize=(11 if two_d else 6, 5), squeeze=False
    )
    axis = axes[0, 0]
    scatter = axis.scatter(
        points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4, vmin=-0.5, vmax=9.5
    )
    colourbar = figure.colorbar(scatter, ax=axis, ticks=range(info.num_classes))
    colourbar.ax.set_yticklabels(info.class_names, fontsize=7)
    axis.set_xlabel(names[0])
    axis.set_ylabel(names[1])
    axis.set_title("posterior means of test images", fontsize=9)
    if two_d:
        q = norm.ppf(np.linspace(0.05, 0.95, traversal))
        z = np.array([[a, b] for b in q[::-1] for a in q], dtype=np.float32)
        picture = _tile(model.decode_mean(z).numpy(), traversal, traversal)
        axes[0, 1].imshow(picture, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[0, 1].set_axis_off()
        axes[0, 1].set_title("decoder means on a grid of z (prior quantiles 5%-95%)", fontsize=9)
    figure.tight_layout()
    plt.close(figure)
    return figure


def learning_curves(history):
    """-ELBO (train and eval) and the rate/distortion split against the step."""
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = [s for s, _ in history["train"]]
    left.plot(steps, [-o["metrics/elbo"] for _, o in history["train"]], label="train")
    right.plot(steps, [o["metrics/rate"] for _, o in history["train"]], label="train rate")
    right.plot(
        steps, [o["metrics/distortion"] for _, o in history["train"]], label="train distortion"
    )
    if history["eval"]:
        eval_steps = [s for s, _ in history["eval"]]
        left.plot(eval_steps, [-r["elbo"] for _, r in history["eval"]], "o-", label="eval")
        right.plot(eval_steps, [r["rate"] for _, r in history["eval"]], "o-", label="eval rate")
        right.plot(
            eval_steps, [r["distortion"] for _, r in history["eval"]], "o-", label="eval distortion"
        )
    left.set_ylabel("-ELBO (nats per image)")
    right.set_ylabel("nats per image")
    for axis in (left, right):
        axis.set_xlabel("global step")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    plt.close(figure)
    return figure


def flag_values():
    """The keyword arguments of `run` as the parsed flags give them."""
    return {name: FLAGS[name].value for name in MODEL_FLAGS} | common_flags.hparams()


def main(argv):
    del argv
    run(**flag_values())


if __name__ == "__main__":
    common.cli(main)

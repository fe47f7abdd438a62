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
held-out images (the floor). Evaluation and figures: `mp.generative.vae`.

Course: ch5.1 Variational Autoencoders, ch7.2 Reparametrization trick.
"""

from absl import flags

from apps import common, runner

runner.define_once(flags.DEFINE_string, "model", "dense", "Encoder/decoder: dense or conv.")
runner.define_once(flags.DEFINE_integer, "latent_dim", 2, "Size of the code z.", lower_bound=1)
runner.define_once(
    flags.DEFINE_enum,
    "likelihood",
    "bernoulli",
    ["bernoulli", "gaussian", "continuous_bernoulli"],
    "Pixel distribution p(x|z) of the decoder.",
)
runner.define_once(
    flags.DEFINE_list,
    "hidden_units",
    ["256"],
    "Widths of the hidden dense layers (dense: all; conv: after the convolutions).",
)
runner.define_once(flags.DEFINE_list, "filters", ["32", "64"], "Channels of the 2 convolutions.")
runner.define_once(
    flags.DEFINE_integer, "iwae_k", 1000, "Importance samples per test image.", lower_bound=1
)
runner.define_once(
    flags.DEFINE_integer,
    "iwae_examples",
    1000,
    "How many test images get the k-sample bound (it costs k decoder passes each).",
    lower_bound=1,
)
runner.define_once(
    flags.DEFINE_enum,
    "binarize",
    "dynamic",
    ["dynamic", "none"],
    "dynamic: pixels redrawn as Bernoulli(grey level) each time; none: grey levels.",
)
runner.define_once(
    flags.DEFINE_boolean,
    "fid",
    None,
    "Compute the classifier-feature FID of samples (trains and caches a classifier the "
    "first time). Default: on for fashion_mnist and mnist, off for digits.",
)
FID_SAMPLES_HELP = "Samples the FID scores (at most the held-out images of its floor)."
FID_CACHE_HELP = "FID classifier's cache (default $MP_CACHE_DIR or ~/.cache/mp)."
runner.define_once(flags.DEFINE_integer, "fid_samples", 5000, FID_SAMPLES_HELP, lower_bound=2)
runner.define_once(flags.DEFINE_string, "fid_cache_dir", None, FID_CACHE_HELP)
APP = runner.App(
    "train_vae",
    own="model latent_dim likelihood hidden_units filters iwae_k iwae_examples binarize fid "
    "fid_samples fid_cache_dir".split(),
    defaults={"epochs": 50},
    refuses=("augment", "log_diagnostics"),
)


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
    progress=True,
    **shared,
):
    """Trains a VAE on `shared["dataset"]`; returns the metrics written to metrics.json.

    The arguments are the flags above (`fid=None`: on except for digits); `shared` are
    the shared flags (`apps.runner.RunConfig`). The metrics: `elbo`, `rate`,
    `distortion`, `nll_nats`, `iwae_k`, `fid_classifier` (with `fid`), `global_step`, ...
    """
    import mp.data
    from mp.generative import vae

    hidden_units = common.positive_ints("hidden_units", hidden_units)
    filters = common.positive_ints("filters", filters, count=2)
    common.check_counts(
        latent_dim=latent_dim, iwae_k=iwae_k, iwae_examples=iwae_examples, fid_samples=fid_samples
    )
    if model not in ("dense", "conv"):
        raise ValueError(f"model must be one of dense, conv. Received: model={model!r}")
    vae.check_binarization(likelihood, binarize)
    config = APP.config(shared | {"model_dir": model_dir})
    dataset, data_dir, seed = config.dataset, config.data_dir, config.seed
    info = mp.data.info(dataset)
    fid = dataset != "digits" if fid is None else fid
    arguments = locals()
    run = runner.Experiment(APP, config, {n: arguments[n] for n in APP.own}, progress=progress)
    train_images, _ = mp.data.load_numpy(
        dataset, "train", data_dir, validation_fraction=config.validation_fraction
    )
    test_images, test_labels = mp.data.load_numpy(dataset, "test", data_dir)
    train_steps = run.train_steps(len(train_images))
    iwae_examples = min(iwae_examples, len(test_images))

    options = dict(kind=model, likelihood=likelihood, hidden_units=hidden_units, filters=filters)
    with run.strategy.scope():
        network = vae.make_vae(info.image_shape, latent_dim, seed=seed, **options)
    task = vae.VAETask(network, run.optimizer(train_steps), clip_norm=run.clip_norm)
    train_data, test_x, test_data, validation_data = run.image_data(
        test_images, vae, binarize, seed
    )
    trainer = run.trainer(task, train_steps)
    result, evaluation = run.fit(trainer, train_data, test_data, validation_data)

    tic = run.clock.seconds()
    iwae = vae.iwae_bounds(task.model, test_x[:iwae_examples], iwae_k, seed=seed)
    iwae_seconds = run.clock.seconds() - tic
    run.export(task)
    pictures = vae.figures(task.model, test_x, test_labels, info.class_names, seed=seed)
    for name, figure in pictures.items():
        run.save_figure(figure, f"{name}.png")
    if len(trainer.history["train"]) > 1:
        run.save_figure(vae.learning_curves_figure(trainer.history), "learning_curves.png")
    metrics = run.metrics(result, train_steps) | {
        "model": task.model.name,
        "likelihood": likelihood,
        "binarize": binarize,
        "latent_dim": latent_dim,
        "num_parameters": int(task.model.count_params()),
        "elbo": evaluation["elbo"],
        "rate": evaluation["rate"],
        "distortion": evaluation["distortion"],
        "test_examples": evaluation["count"],
        "nll_nats": float(-iwae.mean()),
        "iwae_k": iwae_k,
        "iwae_examples": iwae_examples,
        "iwae_seconds": iwae_seconds,
        "train_elbo": result["train"].get("metrics/elbo"),
    }
    summary = (
        f"test ELBO {metrics['elbo']:.2f} nats (rate {metrics['rate']:.2f}, distortion "
        f"{metrics['distortion']:.2f}), NLL <= {metrics['nll_nats']:.2f} nats (IWAE k={iwae_k} "
        f"on {iwae_examples} images)"
    )
    if fid:
        from mp.generative.fid import summary as fid_summary

        metrics |= vae.fid_metrics(
            task.model,
            dataset,
            fid_samples,
            seed=seed,
            binarized_test=test_x if binarize == "dynamic" else None,
            cache_dir=fid_cache_dir,
            data_dir=data_dir,
        )
        summary += f"; {fid_summary(metrics)}"
    return run.finish(metrics, summary)


flag_values = APP.flag_values

if __name__ == "__main__":
    APP.cli(run)

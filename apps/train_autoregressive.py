"""Train an autoregressive image model: `python -m apps.train_autoregressive
--flagfile=flags/ar_pixelcnn_digits.cfg`.

    images in [0, 1] (mp.data) -> binarised (dynamic as in ch5.1, or static)
    -> NADE / MADE / PixelCNN / Gated PixelCNN (mp.generative) -> AutoregressiveTask
       | VRNN / C-VRNN, rows as time steps (mp.generative.vrnn) -> VRNNTask
    -> Trainer -> model.keras, samples.png, receptive_field.png (PixelCNNs),
    class_styles.png (C-VRNN), learning_curves.png -> metrics.json

Training minimises the exact negative log-likelihood with the observed pixels as
inputs (teacher forcing); a MADE with several masks draws one per step. The test
images are binarised once with the VAE's fixed seed, so `nll_nats` (exact, in nats
per image, over every test image) compares with the VAE's importance-weighted bound
on the same bits; `bits_per_dim` is the same number per pixel in bits.
`sample_seconds` times a 64-image grid (the PixelCNNs' band sampler; with
`--time_naive_sampler` also the naive one, and whether both drew the same images).
The VRNN (`--model=vrnn`, and `cvrnn` conditioned on the class) reads an image as
H steps of W pixels; it trains on the ELBO, and its `nll_nats` is a bound: minus
the importance-weighted bound with `--iwae_k` trajectories (`nll_bound`), on the
same test bits. Its state has `--hidden_units` (the first) units, its other
layers `--head_units`; `--free_bits` keeps its latents in use.
Evaluation and figures: `mp.generative.autoregressive.report`.

Course: ch5.3 Autoregressive models (5.3.1 NADE and MADE, 5.3.2 PixelCNN, 5.3.3 VRNN).
"""

from absl import flags

from apps import common, runner

runner.define_once(
    flags.DEFINE_string, "model", "made", "nade, made, pixelcnn, gated_pixelcnn, vrnn or cvrnn."
)
runner.define_once(flags.DEFINE_integer, "latent_dim", 16, "VRNNs: size of z_t.", lower_bound=1)
runner.define_once(
    flags.DEFINE_integer, "iwae_k", 100, "VRNNs: trajectories of the test bound.", lower_bound=1
)
runner.define_once(
    flags.DEFINE_float, "free_bits", 0.0, "VRNNs: KL floor per step (nats).", lower_bound=0.0
)
runner.define_once(
    flags.DEFINE_list, "hidden_units", ["500"], "NADE: its hidden width (the first); MADE: all."
)
runner.define_once(
    flags.DEFINE_integer, "num_masks", 1, "MADE: masks (orderings/connectivities).", lower_bound=1
)
runner.define_once(
    flags.DEFINE_boolean,
    "order_agnostic",
    None,
    "MADE: masks after the first draw their own ordering (default: when num_masks > 1).",
)
runner.define_once(
    flags.DEFINE_integer, "conv_filters", 32, "PixelCNNs: channels (h, or p).", lower_bound=1
)
runner.define_once(
    flags.DEFINE_integer,
    "conv_layers",
    5,
    "PixelCNN: residual blocks; Gated PixelCNN: gated layers.",
    lower_bound=1,
)
runner.define_once(
    flags.DEFINE_integer,
    "conv_kernel",
    3,
    "PixelCNNs: odd size k of the layers after the first (a gated layer's stacks reach k // 2 "
    "rows and columns).",
    lower_bound=1,
)
runner.define_once(
    flags.DEFINE_integer, "head_units", 64, "PixelCNNs: 1x1 layer before the logits.", lower_bound=1
)
runner.define_once(
    flags.DEFINE_enum,
    "ar_binarize",
    "dynamic",
    ["dynamic", "static"],
    "dynamic: Bernoulli(grey level), redrawn each time (test bits drawn once, fixed seed); "
    "static: threshold 0.5.",
)
runner.define_once(
    flags.DEFINE_boolean,
    "time_naive_sampler",
    False,
    "PixelCNNs: also time the naive sampler (a pass over the whole image per pixel).",
)
APP = runner.App(
    "train_autoregressive",
    own="model hidden_units num_masks order_agnostic conv_filters conv_layers conv_kernel "
    "head_units ar_binarize time_naive_sampler latent_dim iwae_k free_bits".split(),
    defaults={"epochs": 20, "learning_rate": 1e-3},
    refuses={
        "augment": "shifted or flipped pixels would change the test likelihood's data",
        "log_diagnostics": "no per-layer diagnostics for these models",
    },
)


def run(
    model_dir=None,
    *,
    model="made",
    hidden_units=(500,),
    num_masks=1,
    order_agnostic=None,
    conv_filters=32,
    conv_layers=5,
    conv_kernel=3,
    head_units=64,
    ar_binarize="dynamic",
    time_naive_sampler=False,
    latent_dim=16,
    iwae_k=100,
    free_bits=0.0,
    progress=True,
    **shared,
):
    """Trains `model` on `shared["dataset"]`; returns the metrics written to metrics.json.

    The arguments are the flags above; `shared` are the shared flags
    (`apps.runner.RunConfig`). The metrics: `nll_nats`, `bits_per_dim`, `binarization`,
    `test_images`, `sample_seconds`, `num_parameters`, `global_step`, ...
    """
    import mp.data
    from mp.generative import autoregressive as ar
    from mp.generative import vrnn

    hidden_units = common.positive_ints("hidden_units", hidden_units)
    common.check_counts(
        num_masks=num_masks, conv_filters=conv_filters, conv_layers=conv_layers,
        head_units=head_units, latent_dim=latent_dim, iwae_k=iwae_k,
    )
    sequence = model in vrnn.MODELS
    if model not in ar.MODELS + vrnn.MODELS:
        models = ", ".join(ar.MODELS + vrnn.MODELS)
        raise ValueError(f"model must be one of {models}. Received: model={model!r}")
    ar.check_binarization(ar_binarize)
    if conv_kernel % 2 != 1:
        raise ValueError(f"conv_kernel must be odd. Received: conv_kernel={conv_kernel}")
    if num_masks > 1 and model != "made":
        raise ValueError(f"num_masks is MADE's. Received: num_masks={num_masks}, model={model}")
    config = APP.config(shared | {"model_dir": model_dir})
    seed = config.seed
    info = mp.data.info(config.dataset)
    arguments = locals()
    run = runner.Experiment(APP, config, {n: arguments[n] for n in APP.own}, progress=progress)
    train_images, _ = mp.data.load_numpy(
        config.dataset, "train", config.data_dir, validation_fraction=config.validation_fraction
    )
    test_images, test_labels = mp.data.load_numpy(config.dataset, "test", config.data_dir)
    train_steps = run.train_steps(len(train_images))

    options = dict(
        hidden_units=hidden_units,
        num_masks=num_masks,
        order_agnostic=order_agnostic,
        filters=conv_filters,
        num_layers=conv_layers,
        kernel_size=conv_kernel,
        head_units=head_units,
        seed=seed,
    )
    with run.strategy.scope():
        network = (
            vrnn.make_model(
                model, info.image_shape, latent_dim=latent_dim, units=hidden_units[0],
                hidden_units=head_units, num_classes=info.num_classes,
            )
            if sequence
            else ar.make_model(model, info.image_shape, **options)
        )
    if free_bits and not sequence:
        raise ValueError(f"free_bits is the VRNNs'. Received: free_bits={free_bits}, model={model}")
    task = (vrnn.VRNNTask if sequence else ar.AutoregressiveTask)(
        network, run.optimizer(train_steps), clip_norm=run.clip_norm, seed=seed,
        **({"free_bits": free_bits} if sequence else {}),
    )
    images = vrnn.ImageData(model == "cvrnn", test_labels) if sequence else ar
    train_data, test_x, test_data, validation_data = run.image_data(
        test_images, images, ar_binarize, seed
    )
    trainer = run.trainer(task, train_steps)
    result, _ = run.fit(trainer, train_data, test_data, validation_data)

    run.export(task)
    if sequence:
        evaluation, pictures = vrnn.report(task.model, test_x, seed=seed, iwae_k=iwae_k)
    else:
        evaluation, pictures = ar.report(
            task.model, test_x, seed=seed, time_naive_sampler=time_naive_sampler
        )
    for name, figure in pictures.items():
        run.save_figure(figure, f"{name}.png")
    if len(trainer.history["train"]) > 1:
        run.save_figure(ar.learning_curves_figure(trainer.history), "learning_curves.png")
    metrics = run.metrics(result, train_steps) | evaluation | ar.binarization_metrics(ar_binarize)
    metrics |= {"model": model, "num_parameters": int(task.model.count_params())}
    summary = (
        f"{model}: test NLL {'<= ' if sequence else ''}{metrics['nll_nats']:.2f} nats "
        f"({metrics['bits_per_dim']:.4f} bits/dim)"
        f" on {metrics['test_images']} images; 64 samples in {metrics['sample_seconds']:.1f} s"
    )
    return run.finish(metrics, summary)


flag_values = APP.flag_values

if __name__ == "__main__":
    APP.cli(run)

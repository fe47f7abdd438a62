"""Train a GAN: `python -m apps.train_gan --flagfile=flags/gan_dcgan_digits.cfg`.

    --data=images  images of --dataset (pixels in [0, 1]) -> GAN (mp.generative.gan)
                   -> GANTask -> Trainer -> samples.png, FID on classifier features
    --data=ring    the 2-D mixture of Gaussians on a ring (VEEGAN's toy) -> samples over
                   the modes, modes covered and high-quality fraction

One engine step is one iteration of the game: `--d_steps` discriminator updates,
each on `--batch_size` real images, then one generator update, each network with
its own optimizer (`--d_learning_rate`, `--g_learning_rate`, else
`--learning_rate`; with adam `--beta_1`; the discriminator's schedule runs over
its `d_steps` times as many updates). Artifacts besides the runner's:
`samples_step<k>.png` at every evaluation, `samples.png` (fixed latent codes),
`discriminator.keras`; `model.keras` is the generator.

Course: ch5.2 Generative Adversarial Networks.
"""

import numpy as np
from absl import flags

from apps import common, runner

runner.define_once(
    flags.DEFINE_enum,
    "data",
    "images",
    ["images", "ring"],
    "images: the images of --dataset; ring: the 2-D mixture of Gaussians on a ring.",
)
runner.define_once(flags.DEFINE_string, "model", "dcgan", "GAN networks: mlp or dcgan.")
runner.define_once(flags.DEFINE_integer, "latent_dim", 64, "Size of the noise z.")
runner.define_once(
    flags.DEFINE_enum,
    "generator_loss",
    "non_saturating",
    ["non_saturating", "saturating"],
    "non_saturating: minimise -log D(G(z)); saturating: minimise log(1 - D(G(z))).",
)
runner.define_once(flags.DEFINE_integer, "d_steps", 1, "D updates per generator update.")
runner.define_once(flags.DEFINE_float, "d_learning_rate", 0.0, "D's rate; 0: --learning_rate.")
runner.define_once(flags.DEFINE_float, "g_learning_rate", 0.0, "G's rate; 0: --learning_rate.")
runner.define_once(flags.DEFINE_float, "beta_1", 0.5, "Adam's first-moment decay (adam only).")
runner.define_once(flags.DEFINE_list, "hidden_units", ["256", "256"], "mlp: widths of G and D.")
runner.define_once(flags.DEFINE_integer, "dcgan_filters", 64, "dcgan: D's first channels.")
FID_SAMPLES_HELP = "Samples the FID scores (at most the held-out images of its floor)."
FID_CACHE_HELP = "FID classifier's cache (default $MP_CACHE_DIR or ~/.cache/mp)."
runner.define_once(flags.DEFINE_integer, "fid_samples", 5000, FID_SAMPLES_HELP, lower_bound=2)
runner.define_once(flags.DEFINE_string, "fid_cache_dir", None, FID_CACHE_HELP)
runner.define_once(flags.DEFINE_integer, "num_modes", 8, "ring: number of Gaussians.")
runner.define_once(flags.DEFINE_float, "ring_radius", 2.0, "ring: radius of the ring.")
runner.define_once(flags.DEFINE_float, "ring_std", 0.02, "ring: std of each Gaussian.")
APP = runner.App(
    "train_gan",
    own="data model latent_dim generator_loss d_steps d_learning_rate g_learning_rate beta_1 "
    "hidden_units dcgan_filters fid_samples fid_cache_dir num_modes ring_radius ring_std".split(),
    defaults={"epochs": 50, "learning_rate": 2e-4},
    refuses="augment log_diagnostics validation_fraction early_stopping_patience clip_norm".split(),
)
RING_SAMPLES = 2500  # as in VEEGAN
GRID = 64  # images in samples_*.png (8 x 8)


def run(
    model_dir=None,
    *,
    data="images",
    model="dcgan",
    latent_dim=64,
    generator_loss="non_saturating",
    d_steps=1,
    d_learning_rate=0.0,
    g_learning_rate=0.0,
    beta_1=0.5,
    hidden_units=(256, 256),
    dcgan_filters=64,
    fid_samples=5000,
    fid_cache_dir=None,
    num_modes=8,
    ring_radius=2.0,
    ring_std=0.02,
    progress=True,
    **shared,
):
    """Trains a GAN; returns the metrics written to metrics.json.

    The arguments are the flags above; `shared` are the shared flags
    (`apps.runner.RunConfig`): `augment`, `log_diagnostics`, `validation_fraction`,
    `early_stopping_patience` and `clip_norm` are refused, and so are `dataset` and
    `data_dir` with `data="ring"`.
    """
    import tensorflow as tf

    import mp.data
    from mp.generative import fid
    from mp.generative import gan as gan_lib
    from mp.plotting import image_grid_figure

    if data not in ("images", "ring"):
        raise ValueError(f"data must be 'images' or 'ring'. Received: data={data!r}")
    hidden_units = common.positive_ints("hidden_units", hidden_units)
    common.check_counts(latent_dim=latent_dim, d_steps=d_steps, dcgan_filters=dcgan_filters)
    common.check_counts(fid_samples=fid_samples, num_modes=num_modes)
    common.check_non_negative(d_learning_rate=d_learning_rate, g_learning_rate=g_learning_rate)
    common.check_positive(ring_radius=ring_radius, ring_std=ring_std)
    if not 0 <= beta_1 < 1:
        raise ValueError(f"beta_1 must be in [0, 1). Received: beta_1={beta_1}")
    ring = data == "ring"
    if ring and model != "mlp":
        raise ValueError(f"data=ring needs model=mlp (points, not images). Received: {model}")
    default_dir = common.default_model_dir("train_gan", "ring") if ring else None
    config = APP.config(shared | {"model_dir": model_dir or default_dir})
    dataset, data_dir, seed = config.dataset, config.data_dir, config.seed
    batch_size = config.batch_size
    if ring and (dataset, data_dir) != (runner.RunConfig.default("dataset"), None):
        raise ValueError("data=ring does not use --dataset nor --data_dir; leave them unset")
    if ring and not config.train_steps:
        raise ValueError("data=ring has no epochs: set train_steps")
    if config.optimizer != "adam" and beta_1 != 0.5:
        raise ValueError(f"beta_1 is Adam's; --optimizer={config.optimizer} has none")
    arguments = locals()
    run = runner.Experiment(APP, config, {n: arguments[n] for n in APP.own}, progress=progress)
    rows = batch_size * d_steps  # the real rows of one iteration's d_steps D updates
    if ring:
        train_steps, sample_shape = config.train_steps, (2,)
        shape = dict(num_modes=num_modes, radius=ring_radius, std=ring_std)
        modes = gan_lib.ring_modes(num_modes, ring_radius)
        points = gan_lib.sample_ring(RING_SAMPLES, seed=seed + 1, **shape)
        eval_data = tf.data.Dataset.from_tensor_slices(points).batch(runner.EVAL_BATCH_SIZE)

        def train_data(start_step):
            return gan_lib.ring_dataset(rows, seed=seed, skip_batches=start_step, **shape)

    else:
        sample_shape = tuple(mp.data.info(dataset).image_shape)  # raises for an unknown dataset
        num_images = len(mp.data.load_numpy(dataset, "train", data_dir)[0])  # missing: error
        if num_images < rows:
            raise ValueError(
                f"batch_size {batch_size} x d_steps {d_steps} exceeds the {num_images} "
                "training images"
            )
        train_steps = run.train_steps(num_images, rows)
        train_data = run.train_data(batch_size=rows, standardize=False)
        eval_data = run.load("test", standardize=False)
    options = dict(hidden_units=hidden_units, filters=dcgan_filters, seed=seed, d_steps=d_steps)
    options["generator_loss"] = generator_loss
    adam = {"beta_1": beta_1} if config.optimizer == "adam" else {}
    task = gan_lib.GANTask(
        lambda: gan_lib.make_gan(model, latent_dim, sample_shape, **options),
        run.optimizer(train_steps * d_steps, d_learning_rate or config.learning_rate, **adam),
        run.optimizer(train_steps, g_learning_rate or config.learning_rate, **adam),
    )
    # Fixed latent codes: the pictures over training show the same z.
    count = RING_SAMPLES if ring else GRID
    fixed_z = np.random.default_rng(seed).normal(size=(count, latent_dim)).astype(np.float32)

    def samples_and_picture(step):
        """G's samples of the fixed codes, their picture and, for the ring, their statistics."""
        samples = task.gan.generator(fixed_z, training=False).numpy()
        if not ring:
            title = f"{model} GAN on {dataset}, step {step}"
            return {}, image_grid_figure(samples, title)
        stats = gan_lib.mode_statistics(samples, modes, ring_std)
        title = f"step {step}: {gan_lib.describe_modes(stats)}"
        return stats, gan_lib.ring_figure(samples, modes, ring_std, title)

    def diagnostics(step):
        """Every log: the ring's mode statistics; every evaluation: a picture of samples."""
        evaluating = config.eval_every and step % config.eval_every == 0
        if not (ring or evaluating):
            return {}
        stats, picture = samples_and_picture(step)
        if evaluating:
            run.save_figure(picture, f"samples_step{step}.png")
        return {k: v for k, v in stats.items() if k != "mode_counts"}

    trainer = run.trainer(task, train_steps, diagnostics=diagnostics)
    result = trainer.fit(train_data, eval_data)
    gan, evaluation = task.gan, result["eval"]
    stats, picture = samples_and_picture(result["global_step"])
    run.save_figure(picture, "samples.png")
    run.export(task)  # the generator
    run.save_model(gan.discriminator, "discriminator.keras")
    if trainer.history["train"]:
        run.save_figure(gan_lib.learning_curves_figure(trainer.history), "learning_curves.png")
    metrics = run.metrics(result, train_steps) | {
        "data": data,
        "dataset": "ring" if ring else dataset,
        "model": model,
        "generator_loss": generator_loss,
        "d_steps": d_steps,
        "generator_parameters": int(gan.generator.count_params()),
        "discriminator_parameters": int(gan.discriminator.count_params()),
        "d_updates": int(gan.d_optimizer.iterations.numpy()),
        "g_updates": int(gan.g_optimizer.iterations.numpy()),
        "eval_d_loss": evaluation["d_loss"],
        "eval_d_real": evaluation["d_real"],
        "eval_d_fake": evaluation["d_fake"],
        "train_d_loss": result["train"].get("loss/discriminator"),
        "train_g_loss": result["train"].get("loss/generator"),
    }
    if ring:
        metrics |= stats | {"epochs": None, "num_modes": num_modes, "num_samples": RING_SAMPLES}
        return run.finish(metrics, gan_lib.describe_modes(stats))
    fid_options = dict(sample_batch=runner.EVAL_BATCH_SIZE, cache_dir=fid_cache_dir)
    metrics |= fid.report_of(gan.sample, dataset, fid_samples, data_dir=data_dir, **fid_options)
    return run.finish(metrics, fid.summary(metrics))


flag_values = APP.flag_values

if __name__ == "__main__":
    APP.cli(run)

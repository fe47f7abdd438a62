"""Train a GAN: `python -m apps.train_gan --flagfile=flags/gan_dcgan_digits.cfg`.

    --data=images  images of --dataset (pixels in [0, 1]) -> GAN (mp.generative.gan)
                   -> GANTask -> Trainer -> samples, FID on classifier features
    --data=ring    the 2-D mixture of 8 Gaussians on a ring (VEEGAN's toy; --dataset
                   is not used) -> modes covered and high-quality fraction

`--model=mlp|dcgan` picks the networks, `--generator_loss` the saturating or
non-saturating generator loss, `--d_steps` the discriminator updates per
generator update. Learning rates: `--learning_rate` is the rate of both
networks unless `--d_learning_rate` / `--g_learning_rate` (> 0) set one of
them apart. With `--optimizer=adam` the first-moment decay is `--beta_1`
(0.5, as in DCGAN). One engine step is one iteration of the game: `d_steps`
discriminator updates, each on `--batch_size` real images, then one
generator update. So `--train_steps` counts generator updates, and the
discriminator makes `d_steps` times as many.

Artifacts: `flags.cfg`, `ckpt/` (both nets, both optimizers and the noise
generator), `train/` and `eval/` summaries,
`samples_step<k>.png` at every evaluation and a final `samples.png` (a grid
of images from fixed latent codes, or the ring's samples over its modes),
`learning_curves.png` (losses of D and G, D(x) and D(G(z))), `model.keras`
(the generator), `discriminator.keras`, `history.json` and, last,
`metrics.json` with `fid_classifier` and the real-data floor `fid_real_floor`
(images) or `modes_covered` and `high_quality_fraction` (ring).

Course: ch5.2 Generative Adversarial Networks.
"""

import os

import numpy as np
import tensorflow as tf
from absl import flags

from apps import common, common_flags
from mp.plotting import pyplot

FLAGS = flags.FLAGS
common_flags.define(dataset="digits", batch_size=64, epochs=50, learning_rate=2e-4)
common_flags.define_once(
    flags.DEFINE_enum,
    "data",
    "images",
    ["images", "ring"],
    "images: the images of --dataset; ring: the 2-D mixture of Gaussians on a ring "
    "(--dataset is not used).",
)
common_flags.define_once(flags.DEFINE_string, "model", "dcgan", "GAN networks: mlp or dcgan.")
common_flags.define_once(flags.DEFINE_integer, "latent_dim", 64, "Size of the noise z.")
common_flags.define_once(
    flags.DEFINE_enum,
    "generator_loss",
    "non_saturating",
    ["non_saturating", "saturating"],
    "non_saturating: minimise -log D(G(z)); saturating: minimise log(1 - D(G(z))).",
)
common_flags.define_once(
    flags.DEFINE_integer, "d_steps", 1, "Discriminator updates per generator update."
)
common_flags.define_once(
    flags.DEFINE_float,
    "d_learning_rate",
    0.0,
    "Discriminator learning rate; 0 uses --learning_rate.",
)
common_flags.define_once(
    flags.DEFINE_float, "g_learning_rate", 0.0, "Generator learning rate; 0 uses --learning_rate."
)
common_flags.define_once(flags.DEFINE_float, "beta_1", 0.5, "Adam's first-moment decay.")
common_flags.define_once(
    flags.DEFINE_list, "hidden_units", ["256", "256"], "mlp: hidden widths of G and D."
)
common_flags.define_once(
    flags.DEFINE_integer,
    "dcgan_filters",
    64,
    "dcgan: channels of D's first convolution (G's first map has twice as many).",
)
common_flags.define_fid()
common_flags.define_once(flags.DEFINE_integer, "num_modes", 8, "ring: number of Gaussians.")
common_flags.define_once(flags.DEFINE_float, "ring_radius", 2.0, "ring: radius of the ring.")
common_flags.define_once(flags.DEFINE_float, "ring_std", 0.02, "ring: std of each Gaussian.")

MODEL_FLAGS = (
    "data",
    "model",
    "latent_dim",
    "generator_loss",
    "d_steps",
    "d_learning_rate",
    "g_learning_rate",
    "beta_1",
    "hidden_units",
    "dcgan_filters",
    "fid_samples",
    "fid_cache_dir",
    "num_modes",
    "ring_radius",
    "ring_std",
)
EVAL_BATCH_SIZE = 500
RING_SAMPLES = 2500  # as in VEEGAN
GRID = 8  # samples_*.png: GRID x GRID images


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
    dataset="digits",
    data_dir=None,
    batch_size=64,
    epochs=50,
    train_steps=0,
    learning_rate=2e-4,
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
    """Trains a GAN; returns the metrics written to metrics.json.

    Args:
      model_dir: output directory (default `runs/train_gan-<dataset or ring>`).
      data: `images` (of `dataset`) or `ring`.
      model: `mlp` or `dcgan` (`dcgan` needs images).
      latent_dim: size of z.
      generator_loss: `non_saturating` or `saturating`.
      d_steps: discriminator updates per generator update.
      d_learning_rate, g_learning_rate: per-network rates; 0 uses `learning_rate`.
      beta_1: Adam's first-moment decay (with `optimizer="adam"`).
      hidden_units: mlp widths; dcgan_filters: channels of D's first convolution.
      fid_samples: (images) samples the FID scores (at most the classifier's held-out
        images, which give the floor with as many).
      fid_cache_dir: cache of the FID's classifier.
      num_modes, ring_radius, ring_std: the ring's mixture.
      The rest: see `apps/common_flags.py`. `augment`, `log_diagnostics`,
      `validation_fraction`, `early_stopping_patience`, `clip_norm`,
      `warmup_steps`, `lr_schedule` other than `constant` and
      `optimizer_impl="mp"` are not supported; setting them is an error.

    Returns:
      The metrics dict.
    """
    hparams = {k: v for k, v in locals().items() if k != "progress"}
    clock = common.Clock()
    import mp.data
    from mp.engine import OPTIMIZERS, Trainer, make_optimizer, make_strategy, seed_everything
    from mp.generative import gan as gan_lib

    # --- check everything before writing anything -----------------------
    if data not in ("images", "ring"):
        raise ValueError(f"data must be 'images' or 'ring'. Received: data={data!r}")
    if model not in ("mlp", "dcgan"):
        raise ValueError(f"model must be 'mlp' or 'dcgan'. Received: model={model!r}")
    if generator_loss not in gan_lib.GENERATOR_LOSSES:
        raise ValueError(
            "generator_loss must be 'non_saturating' or 'saturating'. "
            f"Received: generator_loss={generator_loss!r}"
        )
    hidden_units = common.positive_ints("hidden_units", hidden_units)
    hparams["hidden_units"] = hidden_units
    common.check_counts(
        latent_dim=latent_dim,
        d_steps=d_steps,
        dcgan_filters=dcgan_filters,
        fid_samples=fid_samples,
        batch_size=batch_size,
        epochs=epochs,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        num_modes=num_modes,
    )
    common.check_non_negative(
        train_steps=train_steps,
        eval_every=eval_every,
        d_learning_rate=d_learning_rate,
        g_learning_rate=g_learning_rate,
    )
    common.check_positive(learning_rate=learning_rate, ring_radius=ring_radius, ring_std=ring_std)
    if not 0 <= beta_1 < 1:
        raise ValueError(f"beta_1 must be in [0, 1). Received: beta_1={beta_1}")
    common.check_unsupported(
        "train_gan",
        augment=augment,
        log_diagnostics=log_diagnostics,
        validation_fraction=validation_fraction,
        early_stopping_patience=early_stopping_patience,
        clip_norm=clip_norm,
        warmup_steps=warmup_steps,
        lr_schedule=lr_schedule != "constant" and lr_schedule,
        optimizer_impl=optimizer_impl != "keras" and optimizer_impl,
    )
    if data == "ring":
        if model != "mlp":
            raise ValueError(f"data=ring needs model=mlp (points, not images). Received: {model}")
        if not train_steps:
            raise ValueError("data=ring has no epochs: set train_steps")
        sample_shape = (2,)
        modes = gan_lib.ring_modes(num_modes, ring_radius)
        name = "ring"
    else:
        info = mp.data.info(dataset)  # raises for an unknown dataset
        sample_shape = tuple(info.image_shape)
        if model == "dcgan" and (sample_shape[0] != sample_shape[1] or sample_shape[0] % 4):
            raise ValueError(f"dcgan needs square images with a side divisible by 4: {dataset}")
        train_images = mp.data.load_numpy(dataset, "train", data_dir)[0]  # missing files: error
        steps_per_epoch = len(train_images) // (batch_size * d_steps)  # rows of one iteration
        if steps_per_epoch == 0:
            raise ValueError(
                f"batch_size {batch_size} x d_steps {d_steps} exceeds the {len(train_images)} "
                "training images"
            )
        train_steps = train_steps or epochs * steps_per_epoch
        name = dataset
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {', '.join(OPTIMIZERS)}. Received: {optimizer!r}"
        )
    model_dir = model_dir or common.default_model_dir("train_gan", name)
    hparams.update(model_dir=model_dir, train_steps=train_steps)
    d_rate, g_rate = d_learning_rate or learning_rate, g_learning_rate or learning_rate

    # --- build ------------------------------------------------------------
    seed_everything(seed, deterministic)
    strategy = make_strategy(strategy)

    def make_gan():
        generator, discriminator = gan_lib.build_networks(
            model, latent_dim, sample_shape, hidden_units=hidden_units, filters=dcgan_filters
        )
        return gan_lib.GAN(
            generator,
            discriminator,
            latent_dim=latent_dim,
            generator_loss=generator_loss,
            d_steps=d_steps,
            seed=seed,
        )

    def make_opt(rate):
        if optimizer == "adam":
            import keras

            return lambda: keras.optimizers.Adam(rate, beta_1=beta_1)
        return lambda: make_optimizer(optimizer, rate)

    task = gan_lib.GANTask(make_gan, make_opt(d_rate), make_opt(g_rate))

    if data == "ring":
        ring = dict(num_modes=num_modes, radius=ring_radius, std=ring_std)

        def train_data(start_step):
            return gan_lib.ring_dataset(
                batch_size * d_steps, seed=seed, skip_batches=start_step, **ring
            )

        eval_data = tf.data.Dataset.from_tensor_slices(
            gan_lib.sample_ring(RING_SAMPLES, seed=seed + 1, **ring)
        ).batch(EVAL_BATCH_SIZE)
    else:

        def train_data(start_step):
            """The same batches, in the same order, from any step on (resumption).

            One batch holds the real images of one iteration's `d_steps` D updates.
            """
            return mp.data.load(
                dataset,
                "train",
                data_dir,
                batch_size=batch_size * d_steps,
                shuffle=True,
                seed=seed,
                repeat=True,
                skip_batches=start_step,
                drop_remainder=True,
                standardize=False,
            )

        eval_data = mp.data.load(
            dataset, "test", data_dir, batch_size=EVAL_BATCH_SIZE, standardize=False
        )

    trainer = Trainer(
        task,
        model_dir,
        train_steps=train_steps,
        strategy=strategy,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        eval_every=eval_every,
        jit_compile=jit_compile,
        progress=progress,
    )
    gan = task.gan
    # Fixed latent codes: the grids over training show the same z.
    fixed_z = np.random.default_rng(seed).normal(
        size=(RING_SAMPLES if data == "ring" else GRID * GRID, latent_dim)
    )
    fixed_z = tf.constant(fixed_z, tf.float32)

    def fixed_samples():
        """G's samples of the fixed codes and, for the ring, their mode statistics."""
        samples = gan.generator(fixed_z, training=False).numpy()
        stats = gan_lib.mode_statistics(samples, modes, ring_std) if data == "ring" else {}
        return samples, stats

    def picture(step, samples, stats):
        if data == "ring":
            title = (
                f"step {step}: {stats['modes_covered']}/{num_modes} modes, high quality "
                f"{stats['high_quality_fraction']:.2f}"
            )
            return ring_figure(samples, modes, ring_std, title)
        return grid_figure(samples, f"{model} GAN on {dataset}, step {step}")

    def diagnostics(step):
        """Every log: the ring's mode statistics; every evaluation: a picture of samples."""
        evaluating = eval_every and step % eval_every == 0
        if data != "ring" and not evaluating:
            return {}
        samples, stats = fixed_samples()
        if evaluating:
            path = os.path.join(model_dir, f"samples_step{step}.png")
            common.save_figure(picture(step, samples, stats), path)
        return {k: v for k, v in stats.items() if k != "mode_counts"}

    trainer.diagnostics = diagnostics

    # --- train ------------------------------------------------------------
    common.start_run(model_dir, hparams, trainer.resumed_from_step, progress)
    result = trainer.fit(train_data, eval_data)
    step = result["global_step"]

    # --- artifacts, metrics.json last ---------------------------------------
    samples, stats = fixed_samples()
    common.save_figure(picture(step, samples, stats), os.path.join(model_dir, "samples.png"))
    common.save_model(gan.generator, os.path.join(model_dir, "model.keras"))
    common.save_model(gan.discriminator, os.path.join(model_dir, "discriminator.keras"))
    common.write_json(os.path.join(model_dir, "history.json"), common.history_json(trainer.history))
    if trainer.history["train"]:
        common.save_figure(
            learning_curves_figure(trainer.history),
            os.path.join(model_dir, "learning_curves.png"),
        )
    evaluation = result["eval"]
    metrics = {
        "app": "train_gan",
        "data": data,
        "dataset": name,
        "model": model,
        "generator_loss": generator_loss,
        "d_steps": d_steps,
        "generator_parameters": int(gan.generator.count_params()),
        "discriminator_parameters": int(gan.discriminator.count_params()),
        "global_step": step,
        "train_steps": train_steps,
        "resumed_from_step": result["resumed_from_step"],
        "d_updates": int(gan.d_optimizer.iterations.numpy()),
        "g_updates": int(gan.g_optimizer.iterations.numpy()),
        "eval_d_loss": evaluation["d_loss"],
        "eval_d_real": evaluation["d_real"],
        "eval_d_fake": evaluation["d_fake"],
        "train_d_loss": result["train"].get("loss/discriminator"),
        "train_g_loss": result["train"].get("loss/generator"),
    }
    if data == "ring":
        metrics |= {
            "modes_covered": stats["modes_covered"],
            "num_modes": num_modes,
            "high_quality_fraction": stats["high_quality_fraction"],
            "mode_counts": stats["mode_counts"],
            "num_samples": RING_SAMPLES,
        }
    else:
        metrics |= _fid_metrics(gan, dataset, data_dir, fid_samples, fid_cache_dir)
    metrics |= {
        "epochs": round(step / steps_per_epoch, 3) if data == "images" else None,
        "wall_seconds": clock.seconds(),
        "train_seconds": result["wall_seconds"],
        "num_replicas": strategy.num_replicas_in_sync,
    }
    common.write_json(os.path.join(model_dir, "metrics.json"), metrics)
    if progress:
        if data == "ring":
            text = (
                f"{metrics['modes_covered']}/{num_modes} modes covered, high-quality fraction "
                f"{metrics['high_quality_fraction']:.3f}"
            )
        else:
            text = (
                f"FID (classifier features) {metrics['fid_classifier']:.3f}, real-data floor "
                f"{metrics['fid_real_floor']:.3f} ({metrics['fid_samples']} images)"
            )
        print(
            f"{text} after {step} steps, {metrics['wall_seconds']:.1f} s; artifacts in "
            f"{model_dir}/",
            flush=True,
        )
    return metrics


def _fid_metrics(gan, dataset, data_dir, num_samples, cache_dir):
    """FID of the generator's samples and of as many held-out real images (the floor)."""
    from mp.generative import fid

    count = fid.sample_count(dataset, num_samples, data_dir=data_dir)
    samples = np.concatenate(
        [
            gan.sample(min(EVAL_BATCH_SIZE, count - i)).numpy()
            for i in range(0, count, EVAL_BATCH_SIZE)
        ]
    )
    return fid.report(samples, dataset, cache_dir=cache_dir, data_dir=data_dir)


def grid_figure(images, title=""):
    """A square grid of grey images in [0, 1]."""
    plt = pyplot()
    side = int(np.ceil(np.sqrt(len(images))))
    figure, axes = plt.subplots(side, side, figsize=(side * 0.8, side * 0.8 + 0.4))
    for i, axis in enumerate(np.ravel(axes)):
        if i < len(images):
            axis.imshow(images[i, :, :, 0], cmap="gray", vmin=0.0, vmax=1.0)
        axis.axis("off")
    figure.suptitle(title, fontsize="small")
    figure.tight_layout()
    plt.close(figure)
    return figure


def ring_figure(samples, modes, std, title=""):
    """Samples over the ring's modes, each mode with its 3-std circle (high quality inside)."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, label="samples of G")
    axis.scatter(modes[:, 0], modes[:, 1], marker="x", color="red", label="modes")
    for centre in modes:
        axis.add_patch(plt.Circle(centre, 3 * std, fill=False, color="red", lw=0.8))
    limit = 1.5 * np.abs(modes).max()
    axis.set_xlim(-limit, limit)
    axis.set_ylim(-limit, limit)
    axis.set_aspect("equal")
    axis.legend(loc="upper right", fontsize="small")
    axis.set_title(title, fontsize="small")
    figure.tight_layout()
    plt.close(figure)
    return figure


def learning_curves_figure(history):
    """Losses of D and G, and D(x) and D(G(z)) (train), with the evaluations, against the step."""
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = [s for s, _ in history["train"]]
    train = [o for _, o in history["train"]]
    left.plot(steps, [o["loss/discriminator"] for o in train], label="D loss")
    left.plot(steps, [o["loss/generator"] for o in train], label="G loss")
    right.plot(steps, [o["metrics/d_real"] for o in train], label="D(x)")
    right.plot(steps, [o["metrics/d_fake"] for o in train], label="D(G(z))")
    if history["eval"]:
        eval_steps = [s for s, _ in history["eval"]]
        left.plot(eval_steps, [r["d_loss"] for _, r in history["eval"]], "o", label="D loss, test")
        right.plot(eval_steps, [r["d_real"] for _, r in history["eval"]], "o", label="D(x), test")
    left.axhline(np.log(4), color="grey", ls=":", lw=0.8, label="log 4 (D = 1/2)")
    right.axhline(0.5, color="grey", ls=":", lw=0.8)
    left.set_ylabel("loss")
    right.set_ylabel("discriminator output")
    for axis in (left, right):
        axis.set_xlabel("global step (discriminator updates)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
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

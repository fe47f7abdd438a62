"""Image-to-image translation: pix2pix and CycleGAN.

    python -m apps.train_translation --flagfile=flags/pix2pix_edges_fashion_mnist.cfg


    --model=pix2pix   edge maps of --dataset's images -> the images (paired): U-Net G,
                      PatchGAN D on (edges, image), adversarial + --l1_weight * L1
                      (--adversarial_weight=0: the same G trained by L1 alone)
    --model=cyclegan  images of class --domain_classes[0] <-> images of class [1]
                      (unpaired): two U-Nets, two PatchGANs, LSGAN + --cycle_weight *
                      cycle + --identity_weight * identity, instance norms

One engine step is `GAN.adversarial_step` (mp.generative.gan): `--d_steps` updates of
D, then one of G, each with its own optimizer, as in apps/train_gan.py. At the end the
held-out test images are scored (mp.generative.translation: pix2pix_report,
cyclegan_report) with the FID's classifier of --dataset. Artifacts besides the
runner's: `translations.png` (and `translations_step<k>.png` at every evaluation),
`model.keras` (pix2pix's G, CycleGAN's A -> B), `generator_ba.keras` (CycleGAN),
`discriminator.keras`.

Course: ch5.2.4 Training GANs (pix2pix, CycleGAN).
"""

from absl import flags

from apps import common, runner

runner.define_once(flags.DEFINE_string, "model", "pix2pix", "pix2pix or cyclegan.")
runner.define_once(flags.DEFINE_list, "unet_filters", ["32", "64", "128"], "U-Net channels.")
runner.define_once(flags.DEFINE_integer, "patch_filters", 64, "PatchGAN's first channels.")
runner.define_once(
    flags.DEFINE_integer, "patch_downsamples", 1, "PatchGAN's stride-2 convs (1: 16x16 patches)."
)
runner.define_once(flags.DEFINE_float, "l1_weight", 100.0, "pix2pix: weight of the L1 term.")
runner.define_once(flags.DEFINE_float, "adversarial_weight", 1.0, "pix2pix: 0 trains by L1 alone.")
runner.define_once(flags.DEFINE_float, "cycle_weight", 10.0, "cyclegan: cycle-loss weight.")
runner.define_once(flags.DEFINE_float, "identity_weight", 5.0, "cyclegan: identity-loss weight.")
runner.define_once(flags.DEFINE_list, "domain_classes", ["7", "9"], "cyclegan: classes A, B.")
runner.define_once(flags.DEFINE_float, "edge_threshold", 0.5, "pix2pix: Sobel edge threshold.")
runner.define_once(flags.DEFINE_integer, "d_steps", 1, "D updates per generator update.")
runner.define_once(flags.DEFINE_float, "d_learning_rate", 0.0, "D's rate; 0: --learning_rate.")
runner.define_once(flags.DEFINE_float, "g_learning_rate", 0.0, "G's rate; 0: --learning_rate.")
runner.define_once(flags.DEFINE_float, "beta_1", 0.5, "Adam's first-moment decay (adam only).")
runner.define_once(flags.DEFINE_integer, "eval_examples", 1000, "Test images (per domain) scored.")
runner.define_once(
    flags.DEFINE_string, "fid_cache_dir", None, "FID classifier's cache (default ~/.cache/mp)."
)
APP = runner.App(
    "train_translation",
    own="model unet_filters patch_filters patch_downsamples l1_weight adversarial_weight "
    "cycle_weight identity_weight domain_classes edge_threshold d_steps d_learning_rate "
    "g_learning_rate beta_1 eval_examples fid_cache_dir".split(),
    defaults={"dataset": "fashion_mnist", "epochs": 5, "learning_rate": 2e-4},
    refuses="augment log_diagnostics validation_fraction early_stopping_patience clip_norm".split(),
)


def run(
    model_dir=None,
    *,
    model="pix2pix",
    unet_filters=(32, 64, 128),
    patch_filters=64,
    patch_downsamples=1,
    l1_weight=100.0,
    adversarial_weight=1.0,
    cycle_weight=10.0,
    identity_weight=5.0,
    domain_classes=(7, 9),
    edge_threshold=0.5,
    d_steps=1,
    d_learning_rate=0.0,
    g_learning_rate=0.0,
    beta_1=0.5,
    eval_examples=1000,
    fid_cache_dir=None,
    progress=True,
    **shared,
):
    """Trains pix2pix or CycleGAN; returns the metrics written to metrics.json.

    The arguments are the flags above; `shared` are the shared flags
    (`apps.runner.RunConfig`), of which `augment`, `log_diagnostics`,
    `validation_fraction`, `early_stopping_patience` and `clip_norm` are refused.
    """
    import numpy as np
    import tensorflow as tf

    import mp.data
    from mp.generative import fid
    from mp.generative import translation as lib

    if model not in ("pix2pix", "cyclegan"):
        raise ValueError(f"model must be 'pix2pix' or 'cyclegan'. Received: model={model!r}")
    unet_filters = common.positive_ints("unet_filters", unet_filters)
    domain_classes = tuple(int(c) for c in domain_classes)
    common.check_counts(patch_filters=patch_filters, patch_downsamples=patch_downsamples)
    common.check_counts(d_steps=d_steps, eval_examples=eval_examples)
    common.check_non_negative(d_learning_rate=d_learning_rate, g_learning_rate=g_learning_rate)
    common.check_non_negative(l1_weight=l1_weight, adversarial_weight=adversarial_weight)
    common.check_non_negative(cycle_weight=cycle_weight, identity_weight=identity_weight)
    common.check_positive(edge_threshold=edge_threshold)
    if not 0 <= beta_1 < 1:
        raise ValueError(f"beta_1 must be in [0, 1). Received: beta_1={beta_1}")
    if len(domain_classes) != 2 or domain_classes[0] == domain_classes[1]:
        raise ValueError(f"domain_classes must be two classes. Received: {domain_classes}")
    config = APP.config(shared | {"model_dir": model_dir})
    dataset, data_dir, seed = config.dataset, config.data_dir, config.seed
    if config.optimizer != "adam" and beta_1 != 0.5:
        raise ValueError(f"beta_1 is Adam's; --optimizer={config.optimizer} has none")
    image_shape = tuple(mp.data.info(dataset).image_shape)  # raises for an unknown dataset
    if model == "pix2pix":
        train_b = mp.data.load_numpy(dataset, "train", data_dir)[0].astype(np.float32) / 255
        train_a = lib.edge_maps(train_b, edge_threshold)
        test_b, labels = mp.data.load_numpy(dataset, "test", data_dir)
        test_b, labels = test_b[:eval_examples].astype(np.float32) / 255, labels[:eval_examples]
        test_a = lib.edge_maps(test_b, edge_threshold)
    else:
        train_a, train_b = (lib.class_images(dataset, "train", c, data_dir) for c in domain_classes)
        test_a, test_b = (
            lib.class_images(dataset, "test", c, data_dir)[:eval_examples] for c in domain_classes
        )
        count = min(len(test_a), len(test_b))
        test_a, test_b = test_a[:count], test_b[:count]
    arguments = locals()
    run = runner.Experiment(APP, config, {n: arguments[n] for n in APP.own}, progress=progress)
    rows = config.batch_size * d_steps
    train_steps = run.train_steps(len(train_a), rows)
    paired = model == "pix2pix"

    def train_data(start_step):
        return lib.pairs_dataset(
            train_a, train_b, rows, paired=paired, seed=seed, skip_batches=start_step
        )

    eval_data = tf.data.Dataset.from_tensor_slices({"a": test_a, "b": test_b})
    options = dict(unet_filters=unet_filters, patch_filters=patch_filters, seed=seed)
    options |= dict(num_downsamples=patch_downsamples, d_steps=d_steps)
    if paired:
        options |= dict(l1_weight=l1_weight, adversarial_weight=adversarial_weight)
        make = lib.make_pix2pix
    else:
        options |= dict(cycle_weight=cycle_weight, identity_weight=identity_weight)
        make = lib.make_cyclegan
    adam = {"beta_1": beta_1} if config.optimizer == "adam" else {}
    task = lib.TranslationTask(
        lambda: make(image_shape, **options),
        run.optimizer(train_steps * d_steps, d_learning_rate or config.learning_rate, **adam),
        run.optimizer(train_steps, g_learning_rate or config.learning_rate, **adam),
    )

    def picture(step):
        """The first test images through the generators: input / output / target rows."""
        game, a, b = task.gan, test_a[:8], test_b[:8]
        if paired:
            name = "pix2pix" if adversarial_weight else "L1 only"
            rows = [("edges", a), (name, lib.translate(game.generator, a)), ("target", b)]
        else:
            ab, ba = lib.translate(game.generator_ab, a), lib.translate(game.generator_ba, b)
            rows = [("A", a), ("G(A)", ab), ("F(G(A))", lib.translate(game.generator_ba, ab))]
            rows += [("B", b), ("F(B)", ba), ("G(F(B))", lib.translate(game.generator_ab, ba))]
        return lib.translation_figure(rows, f"{model} on {dataset}, step {step}")

    def diagnostics(step):
        if config.eval_every and step % config.eval_every == 0:
            run.save_figure(picture(step), f"translations_step{step}.png")
        return {}

    trainer = run.trainer(task, train_steps, diagnostics=diagnostics)
    result = trainer.fit(train_data, eval_data.batch(runner.EVAL_BATCH_SIZE))
    game = task.gan
    run.save_figure(picture(result["global_step"]), "translations.png")
    run.export(task)
    if not paired:
        run.save_model(game.generator_ba, "generator_ba.keras")
    run.save_model(game.discriminator, "discriminator.keras")
    fid_options = dict(cache_dir=fid_cache_dir, data_dir=data_dir)
    classifier = fid.load_classifier(dataset, **fid_options)
    if paired:
        report = lib.pix2pix_report(
            game.generator, test_a, test_b, labels, classifier, dataset, **fid_options
        )
        line = f"held-out L1 {report['l1']:.4f}, classifier accuracy on outputs "
        line += f"{report['classifier_accuracy']:.3f}, "
        line += f"FID vs targets {report['fid_classifier']:.2f}"
    else:
        report = lib.cyclegan_report(
            game.generator_ab, game.generator_ba, test_a, test_b, domain_classes, classifier,
            dataset, **fid_options,
        )
        line = f"domain rate A->B {report['domain_rate_ab']:.3f}, "
        line += f"B->A {report['domain_rate_ba']:.3f}"
        line += f", cycle error A {report['cycle_error_a']:.4f}, B {report['cycle_error_b']:.4f}"
    metrics = run.metrics(result, train_steps) | {
        "model": model,
        "dataset": dataset,
        "generator_parameters": int(game.generator.count_params()),
        "discriminator_parameters": int(game.discriminator.count_params()),
        "d_updates": int(game.d_optimizer.iterations.numpy()),
        "g_updates": int(game.g_optimizer.iterations.numpy()),
    }
    metrics |= {f"eval_{k}": v for k, v in result["eval"].items() if k != "count"}
    metrics |= {f"train_{k.split('/')[-1]}": v for k, v in result["train"].items()}
    return run.finish(metrics | report, line)


flag_values = APP.flag_values

if __name__ == "__main__":
    APP.cli(run)

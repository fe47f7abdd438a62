"""Tables of the documented quality runs, read from their `metrics.json` files.

    python -m benchmarks.quality [--runs=runs]

Each documented run is a flagfile (`flags/*.cfg`) whose `--model_dir` is under
`runs/`; this script collects what those runs wrote and prints the Markdown tables
that `benchmarks/RESULTS.md` shows (missing runs are listed as such, never guessed).
"""

import json
import os

from absl import app, flags

flags.DEFINE_string("runs", "runs", "Directory holding the runs' model_dirs.")
FLAGS = flags.FLAGS

CNN_RUNS = (  # (family, model_dir, flagfile)
    ("classic CNN", "cnn_fashion_mnist", "cnn_fashion_mnist.cfg"),
    ("VGG (vgg_small)", "cnn_vgg_fashion_mnist", "cnn_vgg_fashion_mnist.cfg"),
    (
        "Inception (inception_small)",
        "cnn_inception_fashion_mnist",
        "cnn_inception_fashion_mnist.cfg",
    ),
    ("ResNet (ResNet-20)", "cnn_resnet_cifar_fashion_mnist", "cnn_resnet_cifar_fashion_mnist.cfg"),
    ("DenseNet (DenseNet-BC-40)", "cnn_densenet_fashion_mnist", "cnn_densenet_fashion_mnist.cfg"),
)
CELLS = ("rnn", "lstm", "peephole", "coupled", "gru", "clockwork")
ADDING_LENGTHS = (50, 100, 200)


def _metrics(name):
    path = os.path.join(FLAGS.runs, name, "metrics.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _minutes(metrics):
    return f"{metrics['wall_seconds'] / 60:.1f} min"


def cnn_table():
    lines = [
        "| family | flagfile | parameters | epochs | test accuracy | top-5 | wall time |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for family, name, flagfile in CNN_RUNS:
        m = _metrics(name)
        if m is None:
            lines.append(f"| {family} | `flags/{flagfile}` | | | not run | | |")
            continue
        lines.append(
            f"| {family} | `flags/{flagfile}` | {m['num_parameters']:,} | {m['epochs']:g} | "
            f"**{m['test_accuracy']:.4f}** | {m['test_top5']:.4f} | {_minutes(m)} |"
        )
    return "\n".join(lines)


def adding_table():
    header = " | ".join(f"T = {t}" for t in ADDING_LENGTHS)
    lines = [f"| cell | {header} |", "|---|" + "---:|" * len(ADDING_LENGTHS)]
    for cell in CELLS:
        cells = []
        for length in ADDING_LENGTHS:
            m = _metrics(f"rnn_adding_{cell}_T{length}")
            cells.append(
                "not run"
                if m is None
                else f"{m['test_mse']:.3g} (baseline {m['baseline_mse']:.3f}, {_minutes(m)})"
            )
        lines.append(f"| {cell} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sequential_table():
    lines = ["| cell | parameters | test accuracy | wall time |", "|---|---:|---:|---:|"]
    for cell in CELLS:
        m = _metrics(f"rnn_seq_fashion_mnist_{cell}")
        if m is None:
            lines.append(f"| {cell} | | not run | |")
        else:
            lines.append(
                f"| {cell} | {m['num_parameters']:,} | {m['test_accuracy']:.4f} | {_minutes(m)} |"
            )
    return "\n".join(lines)


def charlm_table():
    m = _metrics("rnn_char_lm_lstm")
    if m is None:
        return "char LM (`flags/rnn_char_lm.cfg`): not run"
    return (
        "| model | text | steps (epochs) | bits per character, held-out | uniform | wall time |\n"
        "|---|---|---:|---:|---:|---:|\n"
        f"| {m['cell']} x {m['num_layers']}, {m['units']} units, {m['num_parameters']:,} "
        f"parameters, TBPTT {m['tbptt_steps']} | {m['text_source']}, {m['text_chars']:,} "
        f"characters | {m['global_step']:,} ({m['epochs']:.1f}) | **{m['bits_per_char']:.3f}** | "
        f"{m['uniform_bits_per_char']:.2f} | {_minutes(m)} |\n\n"
        f"Sample at temperature {m['sample_temperature']}:\n\n```\n{m['sample']}\n```"
    )


def vae_table():
    lines = [
        "| run | test NLL bound (nats) | k | test ELBO (rate / distortion) | FID: decoder means / "
        "samples / real floor | wall time |",
        "|---|---:|---:|---|---|---:|",
    ]
    for model in ("dense", "conv"):
        for dataset in ("digits", "fashion_mnist"):
            name = f"vae_{model}_{dataset}"
            m = _metrics(name)
            if m is None:
                lines.append(f"| `flags/{name}.cfg` | not run | | | | |")
                continue
            fid = (
                f"{m['fid_classifier']:.2f} / {m['fid_classifier_true_samples']:.2f} / "
                f"{m['fid_real_floor']:.2f}"
                if m.get("fid_classifier") is not None
                else "not computed"
            )
            lines.append(
                f"| `flags/{name}.cfg` | **{m['nll_nats']:.2f}** | {m['iwae_k']} "
                f"({m['iwae_examples']} images) | {m['elbo']:.2f} ({m['rate']:.2f} / "
                f"{m['distortion']:.2f}) | {fid} | {_minutes(m)} |"
            )
    return "\n".join(lines)


def gan_table():
    lines = ["| run | result | wall time |", "|---|---|---:|"]
    for name in ("gan_ring", "gan_dcgan_digits", "gan_dcgan_fashion_mnist"):
        m = _metrics(name)
        if m is None:
            lines.append(f"| `flags/{name}.cfg` | not run | |")
        elif "modes_covered" in m:
            lines.append(
                f"| `flags/{name}.cfg` | {m['modes_covered']}/{m['num_modes']} modes covered, "
                f"high-quality fraction {m['high_quality_fraction']:.3f} | {_minutes(m)} |"
            )
        else:
            lines.append(
                f"| `flags/{name}.cfg` | FID {m['fid_classifier']:.2f} (real floor "
                f"{m['fid_real_floor']:.2f}, {m['fid_samples']} images) | {_minutes(m)} |"
            )
    return "\n".join(lines)


def fid_table():
    """VAE and GAN samples next to the real-data floor, one row per dataset (equal counts)."""
    runs = (
        ("VAE dense: means / samples", "vae_dense_{}", True),
        ("VAE conv: means / samples", "vae_conv_{}", True),
        ("DCGAN", "gan_dcgan_{}", False),
    )
    lines = [
        "| dataset | images | real floor | " + " | ".join(title for title, _, _ in runs) + " |",
        "|---|---:|---:|" + "---:|" * len(runs),
    ]
    for dataset in ("digits", "fashion_mnist"):
        found = [_metrics(name.format(dataset)) for _, name, _ in runs]
        scored = [m for m in found if m is not None and m.get("fid_classifier") is not None]
        if not scored:
            continue
        counts = sorted({m["fid_samples"] for m in scored})
        floors = sorted({round(m["fid_real_floor"], 2) for m in scored})
        cells = []
        for m, (_, _, vae) in zip(found, runs):
            if m is None or m.get("fid_classifier") is None:
                cells.append("not run")
            elif vae:
                cells.append(f"{m['fid_classifier']:.2f} / {m['fid_classifier_true_samples']:.2f}")
            else:
                cells.append(f"{m['fid_classifier']:.2f}")
        lines.append(
            f"| {dataset} | {', '.join(map(str, counts))} | "
            f"{', '.join(f'{f:.2f}' for f in floors)} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def main(argv):
    del argv
    for title, table in (
        ("Fashion-MNIST, one run per CNN family", cnn_table),
        ("Adding problem, test MSE per cell", adding_table),
        ("Fashion-MNIST row by row, per cell", sequential_table),
        ("Character language model", charlm_table),
        ("VAE on dynamically binarised images", vae_table),
        ("GAN", gan_table),
        ("Sample quality: classifier-feature FID against the test split", fid_table),
    ):
        print(f"### {title}\n\n{table()}\n")


if __name__ == "__main__":
    app.run(main)

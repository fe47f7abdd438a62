"""Train a multilayer perceptron: `python -m apps.train_mlp --flagfile=flags/mlp_digits.cfg`.

Every technique of chapter 2 is a flag: `--activation`, `--initializer`,
`--optimizer` (with `--optimizer_impl=mp` for the package's own update rules),
`--dropout`, `--batch_norm`, `--weight_decay`, `--noise_stddev`,
`--early_stopping_patience`, `--log_diagnostics`. `apps/compare.py` sweeps any
of them.

Course: ch1 Deep Learning Basics (MLP), ch2 Training Neural Networks.
"""

from absl import flags

from apps import common, common_flags
from apps.classifier import run_classifier
from mp.training.activations import ACTIVATIONS
from mp.training.initializers import INITIALIZERS

FLAGS = flags.FLAGS
common_flags.define(dataset="digits", batch_size=64, epochs=20, learning_rate=1e-3)
common_flags.define_once(
    flags.DEFINE_list, "hidden_units", ["256", "128"], "Widths of the hidden layers."
)
common_flags.define_once(
    flags.DEFINE_enum, "activation", "relu", ACTIVATIONS, "Hidden activation (ch2.1)."
)
common_flags.define_once(
    flags.DEFINE_enum, "initializer", "xavier", INITIALIZERS, "Kernel initialiser (ch2)."
)
common_flags.define_once(
    flags.DEFINE_float, "dropout", 0.0, "Inverted dropout after each hidden layer, in [0, 1)."
)
common_flags.define_once(
    flags.DEFINE_boolean, "batch_norm", False, "Batch normalisation before each activation."
)
common_flags.define_once(
    flags.DEFINE_float, "weight_decay", 0.0, "L2 penalty coefficient on the kernels."
)
common_flags.define_once(
    flags.DEFINE_float, "noise_stddev", 0.0, "Gaussian noise added to the inputs in training."
)

MODEL_FLAGS = (
    "hidden_units",
    "activation",
    "initializer",
    "dropout",
    "batch_norm",
    "weight_decay",
    "noise_stddev",
)


def run(
    model_dir=None,
    *,
    hidden_units=(256, 128),
    activation="relu",
    initializer="xavier",
    dropout=0.0,
    batch_norm=False,
    weight_decay=0.0,
    noise_stddev=0.0,
    **hparams,
):
    """Trains an MLP on `hparams["dataset"]`; returns the metrics (see apps/classifier.py)."""
    from mp.training.network import mlp

    try:
        hidden_units = tuple(int(u) for u in hidden_units)
    except ValueError:
        raise ValueError(
            f"hidden_units must be integers. Received: hidden_units={hidden_units}"
        ) from None
    model_hparams = {
        "hidden_units": hidden_units,
        "activation": activation,
        "initializer": initializer,
        "dropout": dropout,
        "batch_norm": batch_norm,
        "weight_decay": weight_decay,
        "noise_stddev": noise_stddev,
    }
    seed = hparams.get("seed", 0)

    def build(input_shape, num_classes):
        return mlp(input_shape, num_classes=num_classes, seed=seed, **model_hparams)

    return run_classifier(
        app_name="train_mlp",
        build_model=build,
        model_dir=model_dir,
        model_hparams=model_hparams,
        **hparams,
    )


def flag_values():
    """The keyword arguments of `run` as the parsed flags give them."""
    return {name: FLAGS[name].value for name in MODEL_FLAGS} | common_flags.hparams()


def main(argv):
    del argv
    run(**flag_values())


if __name__ == "__main__":
    common.cli(main)

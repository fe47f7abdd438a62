"""Train a multilayer perceptron: `python -m apps.train_mlp --flagfile=flags/mlp_digits.cfg`.

Every technique of chapter 2 is a flag: `--activation`, `--initializer`,
`--optimizer` (with `--optimizer_impl=mp` for the package's own update rules),
`--dropout`, `--batch_norm`, `--weight_decay`, `--noise_stddev`,
`--early_stopping_patience`, `--log_diagnostics`. `apps/compare.py` sweeps any
of them.

Course: ch1 Deep Learning Basics (MLP), ch2 Training Neural Networks.
"""

from absl import flags

from apps import common, runner
from apps.classification import run_classifier
from mp.training.activations import ACTIVATIONS
from mp.training.initializers import INITIALIZERS

runner.define_once(
    flags.DEFINE_list, "hidden_units", ["256", "128"], "Widths of the hidden layers."
)
runner.define_once(
    flags.DEFINE_enum, "activation", "relu", ACTIVATIONS, "Hidden activation (ch2.1)."
)
runner.define_once(
    flags.DEFINE_enum, "initializer", "xavier", INITIALIZERS, "Kernel initialiser (ch2)."
)
runner.define_once(
    flags.DEFINE_float, "dropout", 0.0, "Inverted dropout after each hidden layer, in [0, 1)."
)
runner.define_once(
    flags.DEFINE_boolean, "batch_norm", False, "Batch normalisation before each activation."
)
runner.define_once(
    flags.DEFINE_float, "weight_decay", 0.0, "L2 penalty coefficient on the kernels."
)
runner.define_once(
    flags.DEFINE_float, "noise_stddev", 0.0, "Gaussian noise added to the inputs in training."
)
APP = runner.App(
    "train_mlp",
    own=(
        "hidden_units",
        "activation",
        "initializer",
        "dropout",
        "batch_norm",
        "weight_decay",
        "noise_stddev",
    ),
    defaults={"epochs": 20},
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
    progress=True,
    **shared,
):
    """Trains an MLP on `shared["dataset"]`; returns the metrics (apps/classification.py)."""
    from mp.training.network import configurable_mlp

    own = {
        "hidden_units": common.positive_ints("hidden_units", hidden_units),
        "activation": activation,
        "initializer": initializer,
        "dropout": dropout,
        "batch_norm": batch_norm,
        "weight_decay": weight_decay,
        "noise_stddev": noise_stddev,
    }
    seed = shared.get("seed", 0)

    def build(input_shape, num_classes):
        return configurable_mlp(input_shape, num_classes=num_classes, seed=seed, **own)

    return run_classifier(
        APP, build, shared=shared | {"model_dir": model_dir}, own=own, progress=progress
    )


flag_values = APP.flag_values

if __name__ == "__main__":
    APP.cli(run)

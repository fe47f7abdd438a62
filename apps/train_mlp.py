"""Train a multilayer perceptron: `python -m apps.train_mlp --flagfile=flags/mlp_digits.cfg`.

Course: ch1 Deep Learning Basics (MLP), ch2 Training Neural Networks.
"""

from absl import flags

from apps import common, common_flags
from apps.classifier import run_classifier

FLAGS = flags.FLAGS
common_flags.define(dataset="digits", batch_size=64, epochs=20, learning_rate=1e-3)
common_flags.define_once(
    flags.DEFINE_list, "hidden_units", ["256", "128"], "Widths of the hidden layers."
)
common_flags.define_once(
    flags.DEFINE_string, "activation", "relu", "Hidden activation (a Keras activation name)."
)
common_flags.define_once(
    flags.DEFINE_float, "dropout", 0.0, "Dropout after each hidden layer, in [0, 1)."
)


def run(model_dir=None, *, hidden_units=(256, 128), activation="relu", dropout=0.0, **hparams):
    """Trains an MLP on `hparams["dataset"]`; returns the metrics (see apps/classifier.py)."""
    from mp.basics import mlp

    try:
        hidden_units = tuple(int(u) for u in hidden_units)
    except ValueError:
        raise ValueError(
            f"hidden_units must be integers. Received: hidden_units={hidden_units}"
        ) from None
    model_hparams = {"hidden_units": hidden_units, "activation": activation, "dropout": dropout}

    def build(input_shape, num_classes):
        return mlp(
            input_shape,
            hidden_units=hidden_units,
            num_classes=num_classes,
            activation=activation,
            dropout=dropout,
        )

    return run_classifier(
        app_name="train_mlp",
        build_model=build,
        model_dir=model_dir,
        model_hparams=model_hparams,
        **hparams,
    )


def main(argv):
    del argv
    run(
        hidden_units=FLAGS.hidden_units,
        activation=FLAGS.activation,
        dropout=FLAGS.dropout,
        **common_flags.hparams(),
    )


if __name__ == "__main__":
    common.cli(main)

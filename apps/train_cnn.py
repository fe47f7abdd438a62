"""Train a CNN classifier: `python -m apps.train_cnn --flagfile=flags/cnn_digits.cfg`.

The default is the classic conv-pool-conv-pool-dense network (`mp.cnn.classic`);
`--model=` picks any registered architecture (chapter 3 adds the zoo).

Course: ch3 Convolutional Neural Networks.
"""

from absl import flags

from apps import common, common_flags
from apps.classifier import run_classifier

FLAGS = flags.FLAGS
common_flags.define(dataset="digits", batch_size=64, epochs=10, learning_rate=1e-3)
common_flags.define_once(
    flags.DEFINE_string, "model", "classic_cnn", "Registered architecture (mp.cnn.model_names())."
)
common_flags.define_once(
    flags.DEFINE_float, "dropout", 0.4, "Dropout before the logits (classic_cnn)."
)
common_flags.define_once(
    flags.DEFINE_integer,
    "dense_units",
    1024,
    "Width of the hidden dense layer (classic_cnn).",
    lower_bound=1,
)


MODEL_FLAGS = ("model", "dropout", "dense_units")


def run(model_dir=None, *, model="classic_cnn", dropout=0.4, dense_units=1024, **hparams):
    """Trains `model` on `hparams["dataset"]`; returns the metrics (see apps/classifier.py)."""
    import mp.cnn

    if model not in mp.cnn.model_names():
        raise ValueError(
            f"Unknown model. Expected one of {', '.join(mp.cnn.model_names())}. "
            f"Received: model={model!r}"
        )
    extra = {"dropout": dropout, "dense_units": dense_units} if model == "classic_cnn" else {}

    def build(input_shape, num_classes):
        return mp.cnn.get_model(model, input_shape, num_classes, **extra)

    from mp.cnn.inception import TASKS  # architectures that train with a task of their own

    return run_classifier(
        app_name="train_cnn",
        build_model=build,
        task_class=TASKS.get(model),
        model_dir=model_dir,
        model_hparams={"model": model, **extra},
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

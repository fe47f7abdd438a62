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
common_flags.define_once(
    flags.DEFINE_string,
    "model_options",
    "",
    "Architecture options of --model as name=value pairs, e.g. depth=56 (resnet_cifar), "
    "depth=22,growth_rate=12 (densenet_small), width=0.5 (vgg_small): the keyword "
    "arguments of the model's builder in mp.cnn.",
)


MODEL_FLAGS = ("model", "dropout", "dense_units", "model_options")


def parse_model_options(text):
    """`"depth=56,width=16"` -> `{"depth": 56, "width": 16}` (ints, floats, booleans, strings).

    Raises:
      ValueError: for an item that is not `name=value`.
    """
    options = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(
                f"model_options must look like name=value,name=value. Received: {text!r}"
            )
        options[name.strip()] = _parse_value(value.strip())
    return options


def _parse_value(value):
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def run(
    model_dir=None,
    *,
    model="classic_cnn",
    dropout=0.4,
    dense_units=1024,
    model_options="",
    **hparams,
):
    """Trains `model` on `hparams["dataset"]`; returns the metrics (see apps/classifier.py).

    `model_options` (a `name=value,...` string or a dict) go to the model's builder.
    """
    import mp.cnn

    if model not in mp.cnn.model_names():
        raise ValueError(
            f"Unknown model. Expected one of {', '.join(mp.cnn.model_names())}. "
            f"Received: model={model!r}"
        )
    extra = {"dropout": dropout, "dense_units": dense_units} if model == "classic_cnn" else {}
    options = (
        dict(model_options)
        if isinstance(model_options, dict)
        else parse_model_options(model_options)
    )

    def build(input_shape, num_classes):
        try:
            return mp.cnn.get_model(model, input_shape, num_classes, **extra, **options)
        except TypeError as error:  # an option the builder does not take
            raise ValueError(f"model_options do not fit --model={model}: {error}") from None

    from mp.cnn.inception import TASKS  # architectures that train with a task of their own

    return run_classifier(
        app_name="train_cnn",
        build_model=build,
        task_class=TASKS.get(model),
        model_dir=model_dir,
        model_hparams={"model": model, **extra, "model_options": _format_options(options)},
        **hparams,
    )


def _format_options(options):
    return ",".join(f"{name}={value}" for name, value in options.items())


def flag_values():
    """The keyword arguments of `run` as the parsed flags give them."""
    return {name: FLAGS[name].value for name in MODEL_FLAGS} | common_flags.hparams()


def main(argv):
    del argv
    run(**flag_values())


if __name__ == "__main__":
    common.cli(main)

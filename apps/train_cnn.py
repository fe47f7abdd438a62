"""Train a CNN classifier: `python -m apps.train_cnn --flagfile=flags/cnn_digits.cfg`.

The default is the classic conv-pool-conv-pool-dense network (`mp.cnn.classic`);
`--model=` picks any registered architecture (chapter 3 adds the zoo), and
`--model_options=depth=56` passes keyword arguments to its builder.

Course: ch3 Convolutional Neural Networks.
"""

from absl import flags

from apps import runner
from apps.classification import run_classifier

runner.define_once(
    flags.DEFINE_string, "model", "classic_cnn", "Registered architecture (mp.cnn.model_names())."
)
runner.define_once(flags.DEFINE_float, "dropout", 0.4, "Dropout before the logits (classic_cnn).")
runner.define_once(
    flags.DEFINE_integer,
    "dense_units",
    1024,
    "Width of the hidden dense layer (classic_cnn).",
    lower_bound=1,
)
runner.define_once(
    flags.DEFINE_string,
    "model_options",
    "",
    "Architecture options of --model as name=value pairs, e.g. depth=56 (resnet_cifar), "
    "depth=22,growth_rate=12 (densenet_small), width=0.5 (vgg_small): the keyword "
    "arguments of the model's builder in mp.cnn.",
)
APP = runner.App(
    "train_cnn",
    own=("model", "dropout", "dense_units", "model_options"),
    defaults={"epochs": 10},
)


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
    progress=True,
    **shared,
):
    """Trains `model` on `shared["dataset"]`; returns the metrics (apps/classification.py).

    `model_options` (a `name=value,...` string or a dict) go to the model's builder;
    `shared` are the shared flags (`apps.runner.RunConfig`).
    """
    import mp.cnn
    from mp.cnn.inception import TASKS  # architectures that train with a task of their own

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

    text = ",".join(f"{name}={value}" for name, value in options.items())
    return run_classifier(
        APP,
        build,
        shared=shared | {"model_dir": model_dir},
        own={"model": model, **extra, "model_options": text},
        task_class=TASKS.get(model),
        progress=progress,
    )


flag_values = APP.flag_values

if __name__ == "__main__":
    APP.cli(run)

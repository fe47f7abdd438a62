"""One short training per value of a flag, drawn into one figure.

    python -m apps.compare --flagfile=flags/compare_optimizers.cfg
    python -m apps.compare --app=train_mlp --sweep=initializer=zeros,small,xavier,he \
        --epochs=3 --model_dir=runs/compare_init

Every run is the chosen app's `run(...)` with the same flags but the swept
one, in `<model_dir>/<flag>=<value>/` (each with its own artifacts, so an
interrupted sweep resumes run by run). `<model_dir>/compare.png` shows the
training loss, the evaluation accuracy and the final `--summary_metric` of
every value; `metrics.json` holds one row of final metrics per value.

Course: ch2 Training Neural Networks (comparing optimisers, initialisations,
regularisers: "just try and see", ch2.3).
"""

import importlib
import os
import sys

from absl import flags

from apps import common, outputs
from apps.config import define_once

FLAGS = flags.FLAGS
APPS = ("train_mlp", "train_cnn")

# define_once: compare is imported beside the apps it sweeps (tests, notebooks), and again.
define_once(flags.DEFINE_enum, "app", "train_mlp", APPS, "The app whose runs are compared.")
define_once(
    flags.DEFINE_string,
    "sweep",
    None,
    "The flag and its values: name=value1,value2,... (e.g. optimizer=sgd,adam).",
)
define_once(
    flags.DEFINE_string,
    "summary_metric",
    "test_accuracy",
    "A metrics.json key to plot against the swept values.",
)
define_once(
    flags.DEFINE_string,
    "export",
    None,
    "Also write the figure and the table to <export>.png and <export>.json "
    "(e.g. docs/ch2_optimizers), the numbers beside the picture they produced.",
)


def parse_sweep(sweep):
    """`"optimizer=sgd,adam"` -> `("optimizer", ["sgd", "adam"])`."""
    name, sep, values = (sweep or "").partition("=")
    values = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not name or not values:
        raise ValueError(f"sweep must look like name=value1,value2. Received: sweep={sweep!r}")
    return name.strip(), values


def run(
    model_dir,
    *,
    app_module,
    base,
    flag_name,
    values,
    summary_metric="test_accuracy",
    parse=str,
    export=None,
):
    """Runs `app_module.run` once per value; returns the comparison written to metrics.json.

    Args:
      model_dir: the sweep's directory; run `i` goes to `<model_dir>/<flag>=<value>`.
      app_module: an app with `run(model_dir, **hparams)`.
      base: the keyword arguments shared by every run.
      flag_name: the swept keyword argument (must be one of `base`).
      values: the values, as strings.
      summary_metric: the metrics.json key shown in the third panel.
      parse: turns a value string into the keyword argument's type.
      export: if set, the figure and the table are also written to
        `<export>.png` and `<export>.json`.

    A run that diverges (NaN loss) is recorded as such and left out of the
    figure: at a learning rate too high, that is the result.
    """
    from mp.engine import TrainingDiverged

    if flag_name not in base:
        raise ValueError(
            f"{flag_name!r} is not a flag of {app_module.__name__}. Flags: "
            f"{', '.join(sorted(base))}"
        )
    typed = [parse(v) for v in values]  # bad values fail before any run starts
    clock = common.Clock()
    app_name = app_module.__name__.rsplit(".", 1)[-1]
    os.makedirs(model_dir, exist_ok=True)
    sweep = {"app": app_name, "sweep": f"{flag_name}={','.join(values)}"}
    sweep |= {"summary_metric": summary_metric, "export": export, "model_dir": model_dir}
    # `--flagfile=<model_dir>/flags.cfg` replays the whole sweep (finished runs resume).
    common.write_text(os.path.join(model_dir, "flags.cfg"), outputs.flags_cfg(base | sweep))
    histories, rows = {}, {}
    for text, value in zip(values, typed):
        run_dir = os.path.join(model_dir, f"{flag_name}={text}")
        print(f"--- {flag_name}={text} ---", flush=True)
        try:
            rows[text] = app_module.run(run_dir, **(base | {flag_name: value}))
        except TrainingDiverged as e:
            print(f"diverged: {e}", flush=True)
            rows[text] = {"diverged": str(e)}
            continue
        histories[text] = common.read_json(os.path.join(run_dir, "history.json"))
    finished = [text for text in values if "diverged" not in rows[text]]
    if not finished:
        raise ValueError(f"every run of the sweep diverged: {rows}")
    missing = [text for text in finished if rows[text].get(summary_metric) is None]
    if missing:
        raise ValueError(f"summary_metric {summary_metric!r} is missing from runs {missing}")
    from mp import plotting

    figure = plotting.sweep_figure(
        histories, {t: rows[t][summary_metric] for t in finished}, flag_name, summary_metric
    )
    common.save_figure(figure, os.path.join(model_dir, "compare.png"))
    keys = ("test_accuracy", "test_loss", "train_loss", "global_step", "wall_seconds")
    comparison = {
        "app": app_name,
        "sweep": flag_name,
        "values": values,
        "summary_metric": summary_metric,
        "runs": {
            t: {k: rows[t].get(k) for k in (*keys, summary_metric, "diverged") if k in rows[t]}
            for t in values
        },
        "global_step": sum(rows[t]["global_step"] for t in finished),
        "wall_seconds": clock.seconds(),
    }
    if export:
        os.makedirs(os.path.dirname(export) or ".", exist_ok=True)
        common.save_figure(figure, f"{export}.png")
        common.write_json(f"{export}.json", comparison)
    common.write_json(os.path.join(model_dir, "metrics.json"), comparison)
    width = max(len(v) for v in [*values, flag_name])
    print(f"{flag_name:>{width}}  test_accuracy  {summary_metric}")
    for text in values:
        row = rows[text]
        if text in finished:
            print(f"{text:>{width}}  {row['test_accuracy']:.4f}         {row[summary_metric]:.4g}")
        else:
            print(f"{text:>{width}}  diverged")
    print(f"figure and table in {model_dir}/", flush=True)
    return comparison


def _app_from_argv(argv):
    """The `--app` value, read before parsing so that only that app defines its flags."""
    try:
        expanded = FLAGS.read_flags_from_files(argv[1:], force_gnu=False)
    except flags.Error as e:
        common.die(e)
    name = "train_mlp"
    for arg in expanded:
        if arg.startswith("--app="):
            name = arg.split("=", 1)[1]
    if name not in APPS:
        common.die(f"--app must be one of {', '.join(APPS)}. Received: {name!r}")
    return importlib.import_module(f"apps.{name}")


def main(argv, app_module):
    del argv
    flag_name, values = parse_sweep(FLAGS.sweep)
    base = app_module.flag_values()
    if flag_name not in base:
        raise ValueError(f"--sweep names {flag_name!r}, which is not a flag of {FLAGS.app}")

    def parse(text):
        flag = FLAGS[flag_name]
        try:
            return flag.parser.parse(text)
        except (ValueError, TypeError) as e:
            raise ValueError(f"--sweep value {text!r} for --{flag_name}: {e}") from None

    model_dir = base.pop("model_dir") or os.path.join("runs", f"compare-{flag_name}")
    run(
        model_dir,
        app_module=app_module,
        base=base,
        flag_name=flag_name,
        values=values,
        summary_metric=FLAGS.summary_metric,
        parse=parse,
        export=FLAGS.export,
    )


def cli():
    """`python -m apps.compare ...`: the sweep of the app `--app` names, under the error contract."""
    module = _app_from_argv(sys.argv)
    common.cli(lambda argv: main(argv, module))


if __name__ == "__main__":
    cli()

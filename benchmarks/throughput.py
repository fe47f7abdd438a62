"""Training throughput: the engine against `keras.Model.fit`, side by side.

Same model (same builder, same seed), same optimizer (Adam), same data pipeline
(`mp.data.load`, shuffled and repeated), same batch size; both compute the
cross-entropy from logits and the top-1 accuracy each step. After a warm-up
(tracing, first batches), each contender trains `--steps` steps; contenders run
interleaved, `--repeats` times, with and without XLA (`jit_compile`).

The report leads with the best of the repeats: on a shared virtual machine the
host's CPU throttling only ever slows a measurement (here it pins runs of
either contender to one fixed lower rate), so the fastest repeat is the least
disturbed estimate of each loop's speed. Medians are shown beside it.

    python -m benchmarks.throughput                 # measures, writes benchmarks/RESULTS.md
    python -m benchmarks.throughput --report_only   # rewrites it from throughput.json

Results are ratios measured in one process on one machine; absolute numbers
only describe this machine.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from absl import app, flags, logging  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import mp.data  # noqa: E402
from mp.basics import mlp  # noqa: E402
from mp.cnn import classic_cnn  # noqa: E402
from mp.engine import ClassificationTask, Trainer  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "fashion_mnist", "Dataset (digits if Fashion-MNIST is absent).")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("steps", 300, "Timed steps per measurement.")
flags.DEFINE_integer("warmup_steps", 50, "Untimed steps before measuring.")
flags.DEFINE_integer("repeats", 3, "Interleaved measurements per contender.")
flags.DEFINE_list("models", ["mlp", "cnn"], "Models to measure.")
flags.DEFINE_string(
    "output", os.path.join(os.path.dirname(__file__), "RESULTS.md"), "Markdown report to (re)write."
)
flags.DEFINE_boolean(
    "report_only",
    False,
    "Rewrite the report from the raw samples in " "throughput.json, without measuring.",
)

BUILDERS = {
    "mlp": lambda shape: mlp(shape, hidden_units=(256, 128), num_classes=10),
    "cnn": lambda shape: classic_cnn(shape, 10),
}


def _data(dataset, batch_size):
    return mp.data.load(
        dataset,
        "train",
        batch_size=batch_size,
        shuffle=True,
        seed=0,
        repeat=True,
        drop_remainder=True,
    )


class EngineRun:
    """`mp.engine.Trainer` on a `ClassificationTask`; each `measure` trains on."""

    def __init__(self, model_name, shape, dataset, batch_size, jit_compile):
        keras.utils.set_random_seed(0)
        self.dataset, self.batch_size = dataset, batch_size
        task = ClassificationTask(BUILDERS[model_name](shape), keras.optimizers.Adam(1e-3))
        self.trainer = Trainer(
            task,
            tempfile.mkdtemp(),
            train_steps=1,
            log_every=100,
            checkpoint_every=10**9,
            jit_compile=jit_compile,
            progress=False,
        )
        self.data = _data(dataset, batch_size)

    def measure(self, steps):
        start = int(self.trainer.global_step.numpy())
        self.trainer.train_steps = start + steps
        tic = time.perf_counter()
        self.trainer.fit(self.data.skip(start))
        return steps * self.batch_size / (time.perf_counter() - tic)


class FitRun:
    """`keras.Model.fit` on the same model, optimizer and data."""

    def __init__(self, model_name, shape, dataset, batch_size, jit_compile):
        keras.utils.set_random_seed(0)
        self.batch_size = batch_size
        self.model = BUILDERS[model_name](shape)
        self.model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            jit_compile=jit_compile,
        )
        self.iterator_data = _data(dataset, batch_size)

    def measure(self, steps):
        tic = time.perf_counter()
        self.model.fit(
            self.iterator_data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False
        )
        return steps * self.batch_size / (time.perf_counter() - tic)


def _machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, no GPU used; Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    )


def _json_path():
    return os.path.join(os.path.dirname(FLAGS.output), "throughput.json")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # TF's checkpoint saver logs at INFO
    if FLAGS.report_only:
        with open(_json_path()) as f:
            saved = json.load(f)
        for key in ("batch_size", "steps", "warmup_steps", "repeats"):
            FLAGS[key].value = saved["setting"][key]
        _write_report(saved["rows"], saved["dataset"], saved["machine"])
        return
    dataset = FLAGS.dataset
    try:
        mp.data.load_numpy(dataset, "train")
    except FileNotFoundError:
        print(f"{dataset} not found; measuring on digits instead")
        dataset = "digits"
    shape = mp.data.info(dataset).image_shape
    rows = []
    for model_name in FLAGS.models:
        for jit in (False, True):
            contenders = {
                "engine": EngineRun(model_name, shape, dataset, FLAGS.batch_size, jit),
                "Model.fit": FitRun(model_name, shape, dataset, FLAGS.batch_size, jit),
            }
            for run in contenders.values():
                run.measure(FLAGS.warmup_steps)
            samples = {name: [] for name in contenders}
            for _ in range(FLAGS.repeats):
                for name, run in contenders.items():
                    samples[name].append(run.measure(FLAGS.steps))
            rows.append({"model": model_name, "jit_compile": jit, "samples": samples})
            engine, fit = max(samples["engine"]), max(samples["Model.fit"])
            print(
                f"{model_name:4s} jit_compile={jit!s:5s} best: engine {engine:8.0f} ex/s   "
                f"Model.fit {fit:8.0f} ex/s   ratio {engine / fit:.2f}x",
                flush=True,
            )
    _write_report(rows, dataset, _machine())


def _write_report(rows, dataset, machine):
    """Writes RESULTS.md (tables from the raw samples) and throughput.json."""
    stats = {}
    for r in rows:
        e, f = r["samples"]["engine"], r["samples"]["Model.fit"]
        stats[(r["model"], r["jit_compile"])] = {
            "best": (max(e), max(f)),
            "median": (statistics.median(e), statistics.median(f)),
        }
    lines = [
        "# Benchmarks",
        "",
        "## Training throughput: engine vs `keras.Model.fit`",
        "",
        f"Machine: {machine}.",
        "",
        f"Setting: {dataset}, batch {FLAGS.batch_size}, Adam; {FLAGS.repeats} interleaved "
        f"measurements of {FLAGS.steps} steps per contender after {FLAGS.warmup_steps} warm-up "
        "steps, same model, data pipeline and optimizer. MLP = 784-256-128-10 "
        "(`mp.basics.mlp`), CNN = the classic conv-pool-conv-pool-dense network "
        "(`mp.cnn.classic_cnn`). Reproduce: `make bench`.",
        "",
        "Best of the repeats (the host's throttling only slows runs; see the module docstring), "
        "medians in the last column:",
        "",
        "| model | XLA | engine, examples/s | Model.fit, examples/s | engine / Model.fit (best) "
        "| (median) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (model_name, jit), st in stats.items():
        (e, f), (me, mf) = st["best"], st["median"]
        lines.append(
            f"| {model_name} | {'on' if jit else 'off'} | {e:.0f} | {f:.0f} | "
            f"**{e / f:.2f}x** | {me / mf:.2f}x |"
        )
    lines += ["", "XLA (`--jit_compile`) against no XLA, best of repeats:", ""]
    for model_name in dict.fromkeys(m for m, _ in stats):
        if (model_name, True) in stats and (model_name, False) in stats:
            on, off = stats[(model_name, True)]["best"], stats[(model_name, False)]["best"]
            lines.append(
                f"- {model_name}: engine {on[0] / off[0]:.2f}x, Model.fit {on[1] / off[1]:.2f}x"
            )
    lines += [
        "",
        "Reading the numbers: both contenders run the same graph for each step. Where "
        "a step is dominated by arithmetic (the CNN: tens of milliseconds of convolutions) "
        "the ratio is close to 1. The engine's gain is the per-step overhead it removes "
        "(`log_every` steps per `tf.function` call over one repeated iterator), which "
        "shows on small, fast steps such as the MLP's. XLA is off by default because it "
        "slows the convolutions on this CPU.",
        "",
    ]
    lines += [
        "Raw samples (examples/s, in measurement order) are in " "`benchmarks/throughput.json`.",
        "",
    ]
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    setting = {k: FLAGS[k].value for k in ("batch_size", "steps", "warmup_steps", "repeats")}
    with open(_json_path(), "w") as f:
        json.dump(
            {"dataset": dataset, "machine": machine, "setting": setting, "rows": rows}, f, indent=2
        )
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)

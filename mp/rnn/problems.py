"""Chapter 4's problems as objects: data, model, engine Task, evaluation and report.

Each problem holds what one experiment of the chapter needs, so that a notebook
runs it with the engine and no flags (`apps/train_rnn.py` does the same):

    import keras
    from mp.engine import Trainer
    from mp.rnn.problems import AddingProblem, GradientNorms

    problem = AddingProblem(seq_len=50, batch_size=64, seed=0)
    model = problem.build_model("lstm", units=64)
    norms = GradientNorms(problem.gradient_inputs(model))
    norms.measure(model, "initial weights")
    task = problem.task(model, keras.optimizers.Adam(2e-3), clip_norm=1.0)
    trainer = Trainer(task, "runs/adding_lstm", train_steps=2000)
    result = trainer.fit(problem.train_data, problem.eval_data)
    norms.measure(model, "trained")
    metrics, files = problem.report(model, result["eval"])  # test_mse, baseline_mse, ...
    norms.figure()                                           # ||dL/dh_t|| before and after

    AddingProblem     the adding problem: regression, full BPTT      test_mse against 1/6
    SequentialImages  images read row by row: classification,        test_accuracy against
                      full BPTT                                      chance
    CharLM            a character language model: truncated BPTT    bits_per_char against
                      with the state carried, samples                log2 V

`make_problem(task, **options)` builds one by its `--task` name (`TASKS`).

Course: ch4 Recurrent Neural Networks (many-to-one, many-to-many), ch4.1
Backpropagation through time (BPTT), ch4.2 Vanishing gradients problem, ch4.3
Long Short Term Memory (LSTM).
"""

import functools
import inspect
import math

import numpy as np
import tensorflow as tf

import mp.data
from mp.rnn import _checks, charlm, tbptt
from mp.rnn.cells import SimpleRNNCell
from mp.rnn.data import ADDING_BASELINE_MSE, adding_dataset, adding_problem, load_text
from mp.rnn.data import sequential_images
from mp.rnn.many_to_one import RegressionTask, sequence_model

EVAL_BATCH_SIZE = 500
GRADIENT_EXAMPLES = 64  # test sequences averaged in the gradient-norm curves

# The options of the problems, checked the same way wherever they arrive.
_CHECKS = {
    "seq_len": lambda v: _checks.count("seq_len", v, minimum=2),
    "tbptt_steps": lambda v: _checks.count("tbptt_steps", v),
    "num_test_examples": lambda v: _checks.count("num_test_examples", v),
    "sample_length": lambda v: _checks.count("sample_length", v, minimum=0),
    "temperature": lambda v: _checks.positive("temperature", v),
    "batch_size": lambda v: _checks.count("batch_size", v),
}


def _check(**options):
    """The options' values, checked (ValueError naming the first one out of range)."""
    return [_CHECKS[name](value) if name in _CHECKS else value for name, value in options.items()]


class Problem:
    """What every problem of the chapter offers; the subclasses fill it in.

    Attributes:
      name: the problem's `--task` name.
      batch_size, seed: the training batch size and the seed of the data.
      steps_per_epoch: training steps in one epoch (a pass over the training data).
      eval_data: finite test batches for `Trainer.fit`, or `None` when the problem
        is scored by `report` only.
      summary_keys: the metrics of the one-line summary (`summary`).
      curve: `(train output, eval metric or None, axis label, baseline or None)`
        of `learning_curves_figure`.
    """

    name = None
    eval_data = None
    summary_keys = ()
    curve = ("loss/total", None, "loss", None)

    def __init__(self, *, batch_size, seed):
        (self.batch_size,) = _check(batch_size=batch_size)
        self.seed = int(seed)

    @property
    def options(self):
        """The problem's own settings by flag name (what `flags.cfg` records)."""
        return {}

    def train_data(self, start_step=0):
        """The training batches from `start_step` on, the same ones from any step (resumption)."""
        raise NotImplementedError

    def build_model(self, cell, *, units, num_layers=1):
        """The problem's network of `cell` (`mp.rnn.cells.CELLS`), first recurrent layer `rnn_1`."""
        raise NotImplementedError

    def task(self, model, optimizer, *, clip_norm=None):
        """The engine `Task` that trains `model` with `optimizer` (or factories of them)."""
        raise NotImplementedError

    def gradient_inputs(self, model):
        """Test inputs `[B, T, D]` of the first recurrent layer, for `GradientNorms`."""
        raise NotImplementedError

    def report(self, model, evaluation, model_dir=None):
        """The problem's final metrics, and the text files worth keeping.

        Args:
          model: the trained model.
          evaluation: the `Trainer`'s evaluation of `eval_data` (`result["eval"]`), or
            `None` when `eval_data` is `None`.
          model_dir: where the run writes (named in the files' headers).

        Returns:
          `(metrics, files)`: a dict of JSON values, and a dict file name -> text.
        """
        raise NotImplementedError

    def summary(self, metrics):
        """`test_mse 0.0012, baseline_mse 0.1642`: the headline metrics in one line."""
        return ", ".join(f"{key} {metrics[key]:.4f}" for key in self.summary_keys)

    def learning_curves_figure(self, history):
        """Training loss (and test values) against the step, with the baseline if any.

        Args:
          history: `Trainer.history`: `{"train": [(step, outputs)], "eval": [(step, results)]}`.

        Returns:
          A matplotlib `Figure`.
        """
        from matplotlib.figure import Figure

        train_key, eval_key, label, baseline = self.curve
        figure = Figure(figsize=(6.5, 4))  # not registered with pyplot: no GUI backend needed
        axis = figure.subplots()
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
        return figure


class _ManyToOne(Problem):
    """A problem of whole sequences, one answer each: `mp.rnn.many_to_one.sequence_model`."""

    output_units = None
    input_shape = None
    task_class = None

    def build_model(self, cell, *, units, num_layers=1, pixel_by_pixel=False):
        return sequence_model(
            cell,
            units=units,
            num_layers=num_layers,
            output_units=self.output_units,
            input_shape=self.input_shape,
            pixel_by_pixel=pixel_by_pixel,
        )

    def task(self, model, optimizer, *, clip_norm=None):
        return self.task_class(model, optimizer, clip_norm=clip_norm)


class AddingProblem(_ManyToOne):
    """The adding problem (`mp.rnn.data`): the sum of two marked values of T steps.

    Training batches are fresh every step (`adding_dataset`); the test set is a
    fixed one of `num_test_examples` sequences, never a training batch. Trained on
    the mean squared error (`RegressionTask`); the constant prediction 1 scores
    about 1/6 (`baseline_mse`, measured on the same test set).

    Args:
      seq_len: T (>= 2).
      num_test_examples: size of the test set.
      batch_size: training sequences per step.
      seed: the data's seed.
    """

    name = "adding"
    summary_keys = ("test_mse", "baseline_mse")
    curve = ("loss/mse", "mse", "mean squared error", ADDING_BASELINE_MSE)
    task_class = RegressionTask
    EPOCH_EXAMPLES = 10_000  # the data never ends: an "epoch" is this many sequences

    def __init__(self, *, seq_len=100, num_test_examples=10000, batch_size=64, seed=0):
        super().__init__(batch_size=batch_size, seed=seed)
        self.seq_len, self.num_test_examples = _check(
            seq_len=seq_len, num_test_examples=num_test_examples
        )
        self.x_test, self.y_test = adding_problem(self.num_test_examples, self.seq_len, self.seed)
        self.eval_data = tf.data.Dataset.from_tensor_slices((self.x_test, self.y_test)).batch(
            EVAL_BATCH_SIZE
        )
        self.steps_per_epoch = max(1, self.EPOCH_EXAMPLES // self.batch_size)
        self.output_units, self.input_shape = 1, (self.seq_len, 2)
        self._train_data = adding_dataset(self.seq_len, self.batch_size, self.seed)

    @property
    def options(self):
        return {"seq_len": self.seq_len, "num_test_examples": self.num_test_examples}

    def train_data(self, start_step=0):
        return self._train_data(start_step)

    def gradient_inputs(self, model):
        del model
        return self.x_test[:GRADIENT_EXAMPLES]

    def report(self, model, evaluation, model_dir=None):
        del model, model_dir
        return {
            "seq_len": self.seq_len,
            "test_mse": evaluation["mse"],
            # The constant prediction 1 = E[y] on the same test set (~1/6, see mp.rnn.data).
            "baseline_mse": float(np.mean((self.y_test.astype(np.float64) - 1.0) ** 2)),
            "test_examples": evaluation["count"],
        }, {}


class SequentialImages(_ManyToOne):
    """Images of `mp.data` read row by row and classified (many-to-one, `ClassificationTask`).

    Step t of a sequence is row t of the image, its pixels scaled to [0, 1]; an
    epoch is one pass over the training split, shuffled with `seed`.

    Args:
      dataset: a dataset of `mp.data.DATASETS` (`digits`: 8 steps of 8 pixels;
        `fashion_mnist`: 28 of 28).
      data_dir: optional directory with the dataset's files.
      batch_size: training images per step.
      seed: the seed of the shuffling.

    Raises:
      ValueError: `batch_size` exceeds the training split.
      DatasetNotFoundError, IdxFormatError: as `mp.data.load`.
    """

    summary_keys = ("test_accuracy",)
    curve = ("loss/cross_entropy", "loss", "cross-entropy (nats)", None)

    def __init__(self, dataset="digits", *, data_dir=None, batch_size=64, seed=0):
        from mp.engine import ClassificationTask

        super().__init__(batch_size=batch_size, seed=seed)
        self.name = f"seq_{dataset}"
        self.dataset, self.data_dir = dataset, data_dir
        self.task_class = ClassificationTask
        self.info = mp.data.info(dataset)
        train_images, _ = mp.data.load_numpy(dataset, "train", data_dir)
        test_images, _ = mp.data.load_numpy(dataset, "test", data_dir)
        self.steps_per_epoch = len(train_images) // self.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"batch_size {self.batch_size} exceeds the {len(train_images)} training "
                f"examples of {dataset}"
            )
        self.rows, cols = self.info.image_shape[:2]
        self.output_units, self.input_shape = self.info.num_classes, (self.rows, cols)
        self.eval_data = sequential_images(dataset, "test", data_dir, batch_size=EVAL_BATCH_SIZE)
        self._gradient_inputs = test_images[:GRADIENT_EXAMPLES, :, :, 0].astype(np.float32) / 255.0

    def train_data(self, start_step=0):
        return sequential_images(
            self.dataset,
            "train",
            self.data_dir,
            batch_size=self.batch_size,
            shuffle=True,
            seed=self.seed,
            repeat=True,
            skip_batches=start_step,
            drop_remainder=True,
        )

    def gradient_inputs(self, model):
        del model
        return self._gradient_inputs

    def report(self, model, evaluation, model_dir=None):
        del model, model_dir
        return {
            "dataset": self.dataset,
            "seq_len": self.rows,
            "test_accuracy": evaluation["top1"],
            "test_loss": evaluation["loss"],
            "test_examples": evaluation["count"],
            "chance_accuracy": 1.0 / self.info.num_classes,
        }, {}


class CharLM(Problem):
    """A character language model (`mp.rnn.charlm`) trained by truncated BPTT.

    The text's last `HELD_OUT_FRACTION` is the test text, scored after training in
    bits per character with the state carried (`charlm.bits_per_char`); the rest
    is cut into `batch_size` parallel streams of segments of `tbptt_steps`
    characters (`tbptt.segment_dataset`, `tbptt.TBPTTTask`). Truncated BPTT starts
    from the zero state only once, at step 0, so the model learns to continue a
    text, not to start one: each sample is primed with the training text's last
    `PRIME_CHARS` characters (cut after a line break), then `sample_prompt`.

    Args:
      text_file: a UTF-8 text file; `None` is the default text (`mp.rnn.data.load_text`).
      seq_len: time steps of the gradient-norm measurement (windows of test text).
      tbptt_steps: k, the segment length of truncated BPTT (k1 = k2 = k).
      sample_length: characters per sample.
      temperature: the sampling temperature of the sample in the metrics; `report`
        also samples at `SAMPLE_TEMPERATURES`.
      sample_prompt: text each sample starts with, after the priming.
      batch_size: parallel streams.
      seed: the seed of the samples.

    Raises:
      FileNotFoundError, ValueError: no text, a prompt outside its characters, or a
        text too short for the streams, segments and windows asked for.
    """

    name = "charlm"
    summary_keys = ("bits_per_char",)
    curve = ("metrics/bits_per_char", None, "bits per character", None)
    HELD_OUT_FRACTION = 0.05
    EMBEDDING_DIM = 64
    SAMPLE_TEMPERATURES = (0.5, 1.0)
    PRIME_CHARS = 1000

    def __init__(
        self,
        text_file=None,
        *,
        seq_len=100,
        tbptt_steps=100,
        sample_length=500,
        temperature=0.8,
        sample_prompt="",
        batch_size=64,
        seed=0,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        seq_len, self.tbptt_steps, self.sample_length, self.temperature = _check(
            seq_len=seq_len,
            tbptt_steps=tbptt_steps,
            sample_length=sample_length,
            temperature=temperature,
        )
        self._read_text(text_file, seq_len, sample_prompt)
        self._train_data = tbptt.segment_dataset(
            self.train_ids, batch_size=self.batch_size, segment_length=self.tbptt_steps
        )  # raises when the text is too short for one segment per stream
        self.steps_per_epoch = self._train_data.segments_per_epoch
        self.eval_streams = min(self.batch_size, (len(self.test_ids) - 1) // self.tbptt_steps)
        windows = min(GRADIENT_EXAMPLES, len(self.test_ids) // seq_len)
        if self.eval_streams < 1 or windows < 1:
            raise ValueError(
                f"the held-out last {self.HELD_OUT_FRACTION:.0%} of the text "
                f"({len(self.test_ids)} characters) is too short: it needs tbptt_steps + 1 = "
                f"{self.tbptt_steps + 1} and seq_len = {seq_len} characters; use a longer text "
                "or shorter tbptt_steps / seq_len"
            )
        # Gradient-norm inputs: `windows` stretches of seq_len held-out characters.
        self.window_ids = self.test_ids[: windows * seq_len].reshape(windows, seq_len)

    def _read_text(self, text_file, seq_len, sample_prompt):
        """The text, its vocabulary and split, and the priming of the samples (not the model's)."""
        self.seq_len, self.text_file, self.sample_prompt = seq_len, text_file, sample_prompt
        text, self.source = load_text(text_file)
        self.vocab = charlm.CharVocab.from_text(text)
        self.ids = self.vocab.encode(text)
        held_out = max(1, int(len(self.ids) * self.HELD_OUT_FRACTION))
        self.train_ids, self.test_ids = self.ids[:-held_out], self.ids[-held_out:]
        self.vocab.encode(sample_prompt)  # every prompt character must be in the text
        priming = text[max(0, len(self.train_ids) - self.PRIME_CHARS) : len(self.train_ids)]
        self.priming = priming[: priming.rfind("\n") + 1] if "\n" in priming else priming

    @property
    def options(self):
        return {
            "text_file": self.text_file,
            "seq_len": self.seq_len,
            "tbptt_steps": self.tbptt_steps,
            "sample_length": self.sample_length,
            "temperature": self.temperature,
            "sample_prompt": self.sample_prompt,
        }

    def train_data(self, start_step=0):
        return self._train_data(start_step)

    def build_model(self, cell, *, units, num_layers=1):
        return charlm.language_model(
            self.vocab.size,
            cell=cell,
            units=units,
            num_layers=num_layers,
            embedding_dim=self.EMBEDDING_DIM,
        )

    def task(self, model, optimizer, *, clip_norm=None):
        if tf.distribute.get_strategy().num_replicas_in_sync != 1:
            raise ValueError("task=charlm carries one RNN state and runs on one replica only")
        return tbptt.TBPTTTask(model, optimizer, batch_size=self.batch_size, clip_norm=clip_norm)

    def gradient_inputs(self, model):
        return model.embedding(self.window_ids).numpy()  # the windows, embedded

    def sample(self, model, temperature=None):
        """`sample_length` characters after the priming and `sample_prompt` (which starts it)."""
        text = charlm.sample(
            model,
            self.vocab,
            prompt=self.priming + self.sample_prompt,
            length=self.sample_length,
            temperature=self.temperature if temperature is None else temperature,
            seed=self.seed,
        )
        return text[len(self.priming) :]

    def report(self, model, evaluation=None, model_dir=None):
        del evaluation  # scored here, on the held-out text
        bits = charlm.bits_per_char(
            model, self.test_ids, batch_size=self.eval_streams, segment_length=self.tbptt_steps
        )
        scores = {"bits_per_char": bits, "tbptt_steps": self.tbptt_steps}
        return self._report(model, model_dir, scores)

    def _report(self, model, model_dir, scores, drawn=None):
        """`report` from the held-out `scores`: the text's figures, samples.txt, vocab.json.

        `drawn` are samples already drawn, by temperature (`self.sample` draws the rest).
        """
        temperatures = sorted({*self.SAMPLE_TEMPERATURES, self.temperature})
        drawn = drawn or {}
        samples = {t: drawn[t] if t in drawn else self.sample(model, t) for t in temperatures}
        header = (
            f"# {len(samples)} samples of {self.sample_length} characters from "
            f"{model_dir or 'the model'}, each primed with the last {len(self.priming)} "
            "characters of the training text\n\n"
        )
        files = {
            "vocab.json": self.vocab.to_json() + "\n",
            "samples.txt": header
            + "".join(f"=== temperature {t} ===\n{s}\n\n" for t, s in samples.items()),
        }
        return scores | {
            "uniform_bits_per_char": math.log2(self.vocab.size),  # a model that learned nothing
            "vocab_size": self.vocab.size,
            "text_source": self.source,
            "text_chars": len(self.ids),
            "train_chars": len(self.train_ids),
            "held_out_chars": len(self.test_ids),
            "sample_temperature": self.temperature,
            "sample": samples[self.temperature],
        }, files


class GradientNorms:
    """`||dL/dh_t||` of a model's first recurrent layer on fixed test inputs (ch4.2).

    Measured at several moments (e.g. initial weights, trained) and drawn together;
    the inputs stay the same, so the curves differ by the layer's weights only (for
    `CharLM`: the test windows as the initial embedding maps them). For the vanilla
    RNN each curve also records the dominant eigenvalue of W_hh.

    Args:
      inputs: inputs `[B, T, D]` of the first recurrent layer, e.g.
        `problem.gradient_inputs(model)`.
    """

    def __init__(self, inputs):
        self.inputs = inputs
        self.curves = {}
        self.eigenvalues = {}

    def measure(self, model, label):
        """Measures the curve of `model` now (`tbptt.gradient_norms`); returns it, array [T]."""
        cell = model.get_layer("rnn_1").cell
        curve = tbptt.gradient_norms(cell, self.inputs)
        self.curves[label] = curve
        if isinstance(cell, SimpleRNNCell):  # a square W_hh of its own
            self.eigenvalues[label] = tbptt.dominant_eigenvalue(cell.recurrent_kernel)
        return curve

    @staticmethod
    def first_to_last(curve):
        """`||dL/dh_1|| / ||dL/dh_T||`: << 1 when the gradient vanishes; `None` if it is 0 at T."""
        return float(curve[0] / curve[-1]) if curve[-1] > 0 else None

    def figure(self, title=None):
        """Every measured curve on one log axis (`tbptt.plot_gradient_norms`)."""
        return tbptt.plot_gradient_norms(self.curves, eigenvalues=self.eigenvalues, title=title)


_FACTORIES = {
    "adding": AddingProblem,
    "seq_fashion_mnist": functools.partial(SequentialImages, "fashion_mnist"),
    "seq_digits": functools.partial(SequentialImages, "digits"),
    "charlm": CharLM,
}
TASKS = tuple(_FACTORIES)


def _options_of(task):
    return set(inspect.signature(_FACTORIES[task]).parameters)


def make_problem(task, *, factory=None, **options):
    """The problem of `--task=task`, built with `options` (its constructor's keywords).

    Options that are `None` are left to the problem's defaults. Every value is
    checked first; then an option the problem does not read is an error naming the
    tasks that read it (a flag is never silently ignored). `factory` builds the
    task's problem in another way (`mp.generative.wavenet.CharLMProblem`: the text of
    `charlm` for a WaveNet); an option it does not take is refused the same way.

    Raises:
      ValueError: an unknown task, a value out of range or an option of another task;
        and what the problem's constructor raises.
    """
    if task not in _FACTORIES:
        raise ValueError(f"task must be one of {', '.join(TASKS)}. Received: task={task!r}")
    options = {name: value for name, value in options.items() if value is not None}
    _check(**options)
    accepted = _options_of(task) if factory is None else set(inspect.signature(factory).parameters)
    for name in options:
        if name not in accepted:
            readers = "/".join(t for t in TASKS if name in _options_of(t)) or "no task"
            raise ValueError(f"{name} is for task={readers} only. Received: task={task!r}")
    return (_FACTORIES[task] if factory is None else factory)(**options)


def network_options(
    cell,
    task,
    *,
    units,
    num_layers,
    kernel_size=None,
    dilations=None,
    pixel_by_pixel=None,
    skip_channels=None,
    tbptt_steps=None,
):
    """The checked options of `cell`'s network on `task`, and the problem factory it needs.

    Returns `(options, factory)`: `options` are the TCN's or WaveNet's convolution options
    (`mp.generative.tcn.sequence_options`, `mp.generative.wavenet.language_model_options`),
    or `{"pixel_by_pixel": True}` / `{}` for a recurrent cell; `factory` is `None` or
    WaveNet's own problem of the `charlm` text (which then takes no `tbptt_steps`).

    Raises:
      ValueError: an option of another kind of network.
    """
    from mp.generative import tcn, wavenet

    if cell != "wavenet":
        if skip_channels is not None:
            raise ValueError(f"skip_channels is for cell=wavenet only. Received: cell={cell!r}")
        return (
            tcn.sequence_options(cell, task, num_layers, kernel_size, dilations, pixel_by_pixel),
            None,
        )
    if pixel_by_pixel is not None:
        raise ValueError(
            f"pixel_by_pixel reads images (task=seq_*), not text. Received: cell={cell!r}"
        )
    options = wavenet.language_model_options(
        task, num_layers, units, kernel_size, dilations, skip_channels, tbptt_steps
    )
    return options, functools.partial(wavenet.CharLMProblem, filters=units, **options)


def build_network(problem, cell, units, num_layers, options):
    """`problem`'s network of `cell` with `options` from `network_options`: a TCN
    (`units` channels, `num_layers` blocks), WaveNet (its problem holds the options) or a
    recurrent network (`problem.build_model`, pixel by pixel if asked)."""
    from mp.generative import tcn

    if cell == "tcn":
        return tcn.sequence_model(problem, filters=units, **options)
    if cell == "wavenet":  # its problem was made with the options
        options = {}
    return problem.build_model(cell, units=units, num_layers=num_layers, **options)


def gradient_norms(problem, model, cell, options):
    """The gradient-norm measurement that fits `cell`'s network, and its figure's title.

    Recurrent cells: `||dL/dh_t||` of the first recurrent layer (`GradientNorms`; pixel by
    pixel, on the test images as the layer reads them); the TCN and WaveNet:
    `||dL/dx_t||` over the input steps (zero outside the receptive field).
    """
    from mp.generative import tcn, wavenet

    inputs = problem.gradient_inputs(model)
    if cell == "tcn":
        return tcn.InputGradientNorms(inputs), "||dL/dx_t|| of the TCN on test inputs"
    if cell == "wavenet":
        title = "||dL/dx_t|| of the next character's logits after test windows"
        return wavenet.NextCharGradientNorms(inputs), title
    if options.get("pixel_by_pixel"):
        inputs = inputs.reshape(len(inputs), -1, 1)  # what the first recurrent layer reads
    return GradientNorms(inputs), f"||dL/dh_t|| of the first {cell} layer on test inputs"

"""Figures the apps write: confusion matrices and learning curves.

matplotlib is imported inside the functions (with the file-only Agg backend),
so importing `mp` stays quick and works without a display.
"""

import numpy as np


def confusion_matrix(labels, predictions, num_classes):
    """Counts `[true class, predicted class]` pairs into a `num_classes` square."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def pyplot():
    """`matplotlib.pyplot` with the file-only Agg backend (figures are saved, never shown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix_figure(matrix, class_names, title=""):
    """A heat map of `matrix` with per-class recall on the rows; returns the figure."""
    plt = pyplot()
    n = len(class_names)
    recall = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.6 * n))
    ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if recall[i, j] > 0.5 else "black",
                )
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def confusion_matrix_of(model, data, num_classes):
    """The confusion matrix of a classifier of logits on `data` ((images, labels) batches)."""
    labels, predictions = [], []
    for images, batch_labels in data:
        predictions.append(np.argmax(model(images, training=False), axis=-1))
        labels.append(np.asarray(batch_labels))
    return confusion_matrix(np.concatenate(labels), np.concatenate(predictions), num_classes)


def confusion_matrix_figure_of(model, data, class_names, title=""):
    """`confusion_matrix_figure` of `model` on `data`: what a notebook calls after training."""
    return confusion_matrix_figure(
        confusion_matrix_of(model, data, len(class_names)), class_names, title=title
    )


def learning_curves_figure(
    history, train_key="loss/total", eval_keys=("loss", "top1"), eval_label="eval"
):
    """Training loss and evaluation metrics against the step; returns the figure.

    Args:
      history: `Trainer.history`: `{"train": [(step, outputs)], "eval": [(step, results)]}`.
      train_key: the training output to draw against the first of `eval_keys`.
      eval_keys: evaluation metrics; the first shares the left panel with `train_key`.
      eval_label: what the evaluations ran on (`validation`, `test`).
    """
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = [s for s, _ in history["train"]]
    left.plot(steps, [o[train_key] for _, o in history["train"]], label="train")
    if history["eval"]:
        eval_steps = [s for s, _ in history["eval"]]
        left.plot(eval_steps, [r[eval_keys[0]] for _, r in history["eval"]], "o-", label=eval_label)
        for key in eval_keys[1:]:
            right.plot(
                eval_steps, [r[key] for _, r in history["eval"]], "o-", label=f"{eval_label} {key}"
            )
    if "metrics/top1" in (history["train"][0][1] if history["train"] else {}):
        right.plot(steps, [o["metrics/top1"] for _, o in history["train"]], label="train top1")
    left.set_xlabel("global step")
    left.set_ylabel("cross-entropy")
    right.set_xlabel("global step")
    right.set_ylabel("accuracy")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def sweep_figure(histories, summary, flag_name, summary_metric):
    """One line per value of a swept flag: training loss, evaluation accuracy, a final metric.

    Args:
      histories: value -> `{"train": [{"step": ..., "loss/total": ...}], "eval": [...]}`
        (the `history.json` of each run).
      summary: value -> the final `summary_metric` of that run.
      flag_name: the swept flag, for titles.
      summary_metric: name of the metric in `summary`.
    """
    plt = pyplot()
    fig, (loss_ax, acc_ax, bar_ax) = plt.subplots(1, 3, figsize=(15, 4))
    for value, history in histories.items():
        train = history["train"]
        line = loss_ax.plot(
            [e["step"] for e in train], [e["loss/total"] for e in train], label=value
        )[0]
        evals = history["eval"]
        if evals:
            acc_ax.plot(
                [e["step"] for e in evals],
                [e["top1"] for e in evals],
                "o-",
                color=line.get_color(),
                label=value,
            )
        else:
            acc_ax.plot(
                [e["step"] for e in train],
                [e["metrics/top1"] for e in train],
                color=line.get_color(),
                label=value,
            )
    loss_ax.set_yscale("log")
    loss_ax.set_title(f"training loss by {flag_name}")
    acc_ax.set_title(
        "evaluation accuracy" if any(h["eval"] for h in histories.values()) else "training accuracy"
    )
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("global step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    names = list(summary)
    bars = bar_ax.bar(range(len(names)), [summary[n] for n in names])
    bar_ax.bar_label(bars, fmt="%.3g", fontsize=8)
    bar_ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    bar_ax.set_title(f"{summary_metric} by {flag_name}")
    bar_ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    plt.close(fig)
    return fig

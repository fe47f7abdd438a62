"""Figures the apps write: confusion matrices, learning curves and grids of images.

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


def tile_images(images, rows=None, cols=None):
    """Grey images `[N, H, W(, 1)]` -> one `[rows * H + gaps, cols * W + gaps]` picture.

    Images fill the rows left to right, separated by 1-pixel grey (0.5) gaps;
    `rows` and `cols` default to the smallest square that holds them all.
    Cells past the last image stay grey; images past `rows * cols` are left out.
    """
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    n, h, w = images.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = rows or int(np.ceil(n / cols))
    canvas = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), 0.5)
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = images[i]
    return canvas


def show_tiles(axis, picture, title=""):
    """Draws a `tile_images` picture (pixels in [0, 1]) on `axis`, without axes."""
    axis.imshow(picture, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axis.set_axis_off()
    axis.set_title(title, fontsize=9)


def image_grid_figure(images, title="", rows=None, cols=None, size=5.0):
    """A figure `size` inches wide of grey images in [0, 1] in a grid (see `tile_images`)."""
    plt = pyplot()
    picture = tile_images(images, rows, cols)
    fig, ax = plt.subplots(figsize=(size, size * picture.shape[0] / picture.shape[1] + 0.4))
    show_tiles(ax, picture, title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def curves_figure(history, panels, xlabel="global step"):
    """Side-by-side panels of training outputs and evaluation results against the step.

    Args:
      history: `Trainer.history`: `{"train": [(step, outputs)], "eval": [(step, results)]}`.
      panels: one dict per panel: `ylabel`; `train` and `eval`, lists of `(label, value)`
        where `value` is a key of the outputs (results) or a function of them; optional
        `eval_style` (matplotlib format of the evaluations, default `"o-"`) and
        `reference`, `(y, label)` of a dotted horizontal line (`label` may be `None`).
      xlabel: the x axis of every panel.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for part, style in (("train", "-"), ("eval", panel.get("eval_style", "o-"))):
            entries = history[part]
            for label, value in panel.get(part, ()) if entries else ():
                get = value if callable(value) else (lambda o, key=value: o[key])
                ax.plot([s for s, _ in entries], [get(o) for _, o in entries], style, label=label)
        if panel.get("reference"):
            y, label = panel["reference"]
            ax.axhline(y, color="grey", ls=":", lw=0.8, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(panel["ylabel"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    plt.close(fig)
    return fig

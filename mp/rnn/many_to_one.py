"""Many-to-one recurrent networks: stacked layers read at the last step, and their regression Task.

`sequence_model` stacks `keras.layers.RNN` layers of the cells of
`mp.rnn.cells` (the matrix form of ch4: layer l reads the outputs of layer
l - 1) and reads its answer from the last output of the top layer,
`y = W_hy h_T + b` (many-to-one). It is trained by full BPTT: each batch holds
whole sequences that start from the zero state, and `keras.layers.RNN`
backpropagates through all T steps. A classifier of such sequences trains with
`mp.engine.ClassificationTask`; `RegressionTask` trains it on the mean squared
error (the adding problem of `mp.rnn.data`).

Course: ch4 Recurrent Neural Networks (many-to-one), ch4.1 Backpropagation
through time (BPTT).
"""

import keras
import tensorflow as tf

from mp.engine.task import SingleModelTask, float32
from mp.rnn import _checks


def sequence_model(
    cell,
    *,
    units,
    num_layers=1,
    output_units,
    input_shape,
    pixel_by_pixel=False,
    name=None,
    **cell_kwargs,
):
    """Stacked recurrent layers read out at the last step (many-to-one).

        h_t^1 = cell(x_t, h_{t-1}^1),  h_t^l = cell(h_t^{l-1}, h_{t-1}^l),  y = W_hy h_T^L + b

    Args:
      cell: a name of `mp.rnn.cells.CELLS` (`rnn`, `lstm`, `peephole`, `coupled`,
        `gru`, `clockwork`).
      units: hidden units per layer.
      num_layers: number of stacked recurrent layers.
      output_units: size of `y` (1 for a regression, the number of classes
        for logits).
      input_shape: `(T, D)` of one sequence; `T` may be `None`.
      pixel_by_pixel: read a `(T, D)` input as `T * D` steps of one value (an image
        pixel by pixel, as the TCN of ch5.3 can) instead of `T` steps of `D`.
      name: the model's name (default `<cell>_x<num_layers>`).
      **cell_kwargs: passed to `mp.rnn.cells.make_cell` (e.g. `periods`).

    Returns:
      A `keras.Model` mapping `[B, T, D]` to `[B, output_units]`. Its recurrent
      layers are named `rnn_1`, ..., `rnn_<num_layers>`.

    Raises:
      ValueError: unknown cell, or a non-positive size.
    """
    from mp.rnn.cells import make_cell

    num_layers = _checks.count("num_layers", num_layers)
    output_units = _checks.count("output_units", output_units)
    inputs = keras.Input(shape=tuple(input_shape), name="sequence")
    h = inputs
    if pixel_by_pixel:
        steps, width = input_shape
        h = keras.layers.Reshape((steps * width, 1), name="pixels")(h)
    for layer in range(1, num_layers + 1):
        h = keras.layers.RNN(
            make_cell(cell, units, **cell_kwargs),
            return_sequences=layer < num_layers,  # the top layer gives h_T only
            name=f"rnn_{layer}",
        )(h)
    outputs = keras.layers.Dense(output_units, name="readout")(h)  # y = W_hy h_T + b
    return keras.Model(inputs, outputs, name=name or f"{cell}_x{num_layers}")


class RegressionTask(SingleModelTask):
    """Regression on the mean squared error, `L = mean_i (f(x_i) - y_i)^2`.

    Like `mp.engine.ClassificationTask`, with the squared error in place of the
    cross-entropy. A model output `[B, 1]` is compared with targets `[B]`.

    Args: see `mp.engine.SingleModelTask`.
    """

    @staticmethod
    def squared_errors(predictions, targets):
        """`(f(x_i) - y_i)^2` per example, float32 (a trailing axis of size 1 is dropped)."""
        predictions = tf.reshape(float32(predictions), tf.shape(targets))
        return tf.square(predictions - tf.cast(targets, predictions.dtype))

    def train_step(self, batch):
        x, y = batch
        with tf.GradientTape() as tape:
            squared = self.squared_errors(self.model(x, training=True), y)
            mse = tf.nn.compute_average_loss(squared)
            loss = mse
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
        grad_norm = self._minimize(tape, loss)
        return {"loss/total": loss, "loss/mse": mse} | self._charts(grad_norm)

    def eval_step(self, batch):
        x, y = batch
        squared = self.squared_errors(self.model(x, training=False), y)
        return {
            "mse": tf.reduce_sum(squared),
            "count": tf.cast(tf.shape(y)[0], tf.float32),
        }



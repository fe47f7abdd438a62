"""Correlation, convolution, their gradients, and the receptive field of a stack of layers.

Correlation and convolution (written here in NumPy from their definitions, so
they can be compared with TensorFlow's). With a kernel indexed from its centre,
`m, n in [-k, k]`:

    correlation:  I'(i, j) = sum_{m,n} K(m, n) I(i + m, j + n)       (template matching)
    convolution:  I'(i, j) = sum_{m,n} K(m, n) I(i - m, j - n)
                           = sum_{m,n} K(-m, -n) I(i + m, j + n)    (point spread function)

so a convolution is a correlation with the kernel rotated by 180 degrees, and
the two agree when the kernel is point symmetric, `K(m, n) = K(-m, -n)`. What
deep learning libraries call a "convolution" (`tf.nn.conv2d`,
`keras.layers.Conv2D`) is a correlation; a learned kernel does not care.

The code indexes the kernel from its top-left corner, `m in [0, kh)`, and the
output from the top-left window; with a dilation `d` (an "a trous" kernel, with
`d - 1` holes between its taps) and a zero-padded input `Xp`:

    correlate2d:  Y[i, j] = sum_{m,n} K[m, n]  Xp[i + d m,            j + d n]
    convolve2d:   Y[i, j] = sum_{m,n} K[m, n]  Xp[i + d (kh - 1 - m), j + d (kw - 1 - n)]

A dilated kernel covers `k_eff = d (k - 1) + 1` pixels per axis, as the
kernel with the holes filled by zeros (`dilate_kernel`) would. Padding:
`"valid"` (none, output `H - k_eff + 1`), `"same"` (output `H`, the
`k_eff - 1` zeros split as TensorFlow does, the smaller half before) and
`"full"` (`k_eff - 1` zeros on each side, output `H + k_eff - 1`: every
position where kernel and image overlap).

Shapes: a single channel image `[H, W]` with a kernel `[kh, kw]`; several
channels `[H, W, C_in]` with a kernel `[kh, kw, C_in, C_out]` (the layout of
`tf.nn.conv2d`), giving `[H', W', C_out]`; or a batch `[N, H, W, C_in]`.
Channels are summed over: `Y[i, j, o] = sum_{m,n,c} K[m, n, c, o] Xp[i + d m, j + d n, c]`.

Backpropagation (for `Y = X (correlated with) K`, "valid", stride 1, and an
upstream gradient `dE/dY`). Each `X[p]` meets `K[m]` in output `Y[p - m]`, and
each `K[m]` meets `X[i + m]` in every output `Y[i]`, so

    dE/dX[p] = sum_m dE/dY[p - m] K[m]   = (dE/dY zero padded, correlated with Rot180(K))[p]
                                        = full convolution of dE/dY with K
    dE/dK[m] = sum_i X[i + m] dE/dY[i]   = (X correlated with dE/dY)[m]

(with channels, the kernel's two channel axes swap in the first, and the
second sums over the batch). The backward pass of a convolution is again a
convolution: ch3.2's `dE/dX = dE/dY * Rot180(K)` and
`dE/dK = Rot180(X * dE/dY)` rewritten with correlations.

Receptive field: the region of the input a unit depends on. For a stack of
layers with kernel `k`, stride `s`, dilation `d` and `p` zeros padded before
the first pixel, starting from one pixel (`r = 1`, `j = 1`, `start = 0`):

    k_eff = d (k - 1) + 1
    r_out = r_in + (k_eff - 1) j_in              size of the receptive field (pixels)
    j_out = j_in s                               jump: input pixels between two adjacent units
    start_out = start_in + ((k_eff - 1) / 2 - p) j_in    centre of the first unit's field

(Dumoulin, Visin, "A guide to convolution arithmetic for deep learning", 2016;
Araujo, Norris, Sim, "Computing receptive fields of convolutional neural
networks", Distill 2019.) Dilation makes `r` grow with `d` at no extra
parameters; strides and pooling multiply the growth of every later layer.

Course: ch3 Convolutional Neural Networks (correlation and convolution),
ch3.1 Layers and Architectures (receptive field, dilations),
ch3.2 Backpropagation in CNNs.
"""

import dataclasses

import keras
import numpy as np

_PADDINGS = ("valid", "same", "full")


def flip180(kernel):
    """The kernel rotated by 180 degrees in its two spatial axes: `K'[m, n] = K[kh-1-m, kw-1-n]`.

    Args:
      kernel: an array `[kh, kw, ...]`; trailing (channel) axes are kept.

    Returns:
      The rotated array, same shape.
    """
    kernel = np.asarray(kernel)
    return kernel[::-1, ::-1, ...]


def dilate_kernel(kernel, dilation):
    """The kernel with `dilation - 1` zeros (holes) between its taps: `[d(kh-1)+1, d(kw-1)+1, ...]`.

    Correlating with `dilate_kernel(K, d)` equals correlating with `K` and `dilation=d`.

    Args:
      kernel: an array `[kh, kw, ...]`.
      dilation: a positive integer.

    Returns:
      The spread kernel.
    """
    _check_positive("dilation", dilation)
    kernel = np.asarray(kernel)
    kh, kw = kernel.shape[:2]
    out = np.zeros((dilation * (kh - 1) + 1, dilation * (kw - 1) + 1, *kernel.shape[2:]))
    out[::dilation, ::dilation] = kernel
    return out.astype(kernel.dtype)


def _check_positive(name, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")


def _as_batch(image, kernel):
    """`image` as `[N, H, W, C_in]`, `kernel` as `[kh, kw, C_in, C_out]`, and a function undoing it."""
    image, kernel = np.asarray(image), np.asarray(kernel)
    if image.ndim == 2 and kernel.ndim == 2:
        return image[None, :, :, None], kernel[:, :, None, None], lambda y: y[0, :, :, 0]
    if kernel.ndim != 4 or image.ndim not in (3, 4):
        raise ValueError(
            "expected image [H, W] with kernel [kh, kw], or image [H, W, C_in] or "
            "[N, H, W, C_in] with kernel [kh, kw, C_in, C_out]. Received: "
            f"image.shape={image.shape}, kernel.shape={kernel.shape}"
        )
    if image.shape[-1] != kernel.shape[2]:
        raise ValueError(
            "the image's channels must match the kernel's input channels. Received: "
            f"image.shape={image.shape}, kernel.shape={kernel.shape}"
        )
    if image.ndim == 3:
        return image[None], kernel, lambda y: y[0]
    return image, kernel, lambda y: y


def _pad(x, k_eff, padding):
    """Zero-pads `x` `[N, H, W, C]` in H and W for a kernel covering `k_eff = (kh_eff, kw_eff)`."""
    if padding not in _PADDINGS:
        raise ValueError(f"padding must be one of {_PADDINGS}. Received: padding={padding!r}")
    pads = []
    for k in k_eff:
        total = {"valid": 0, "same": k - 1, "full": 2 * (k - 1)}[padding]
        pads.append((total // 2, total - total // 2))  # the smaller half before, like TF
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def _slide(image, kernel, padding, dilation, flip):
    """Shared loop of `correlate2d` (`flip=False`) and `convolve2d` (`flip=True`)."""
    _check_positive("dilation", dilation)
    x, k, unbatch = _as_batch(image, kernel)
    kh, kw = k.shape[:2]
    k_eff = (dilation * (kh - 1) + 1, dilation * (kw - 1) + 1)
    xp = _pad(x, k_eff, padding)
    h_out, w_out = xp.shape[1] - k_eff[0] + 1, xp.shape[2] - k_eff[1] + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(
            f"the kernel (effective size {k_eff}) is larger than the padded image "
            f"{xp.shape[1:3]}. Received: image.shape={np.shape(image)}, padding={padding!r}"
        )
    y = np.zeros((x.shape[0], h_out, w_out, k.shape[3]), dtype=np.result_type(x, k))
    for m in range(kh):
        for n in range(kw):
            # Correlation reads X[i + d m]; convolution reads X[i + d (kh - 1 - m)], i.e. X[i - m]
            # from the window's centre.
            a = dilation * ((kh - 1 - m) if flip else m)
            b = dilation * ((kw - 1 - n) if flip else n)
            window = xp[:, a : a + h_out, b : b + w_out, :]  # X[i + a, j + b] for every output
            y += window @ k[m, n]  # sum over input channels: [..., C_in] @ [C_in, C_out]
    return unbatch(y)


def correlate2d(image, kernel, padding="valid", dilation=1):
    """Correlation `Y[i, j] = sum_{m,n} K[m, n] Xp[i + d m, j + d n]` (what `tf.nn.conv2d` computes).

    Args:
      image: `[H, W]`, `[H, W, C_in]` or `[N, H, W, C_in]`.
      kernel: `[kh, kw]` (with a `[H, W]` image) or `[kh, kw, C_in, C_out]`.
      padding: `"valid"`, `"same"` or `"full"` (see the module docstring).
      dilation: spacing of the kernel's taps (1: an ordinary kernel).

    Returns:
      `[H', W']`, `[H', W', C_out]` or `[N, H', W', C_out]`, like the image.

    Raises:
      ValueError: for shapes that do not fit, an unknown padding or a bad dilation.
    """
    return _slide(image, kernel, padding, dilation, flip=False)


def convolve2d(image, kernel, padding="valid", dilation=1):
    """Convolution `Y[i, j] = sum_{m,n} K[m, n] Xp[i + d(kh-1-m), j + d(kw-1-n)]`: X read backwards.

    Equals `correlate2d(image, flip180(kernel), ...)`. Same arguments, shapes
    and errors as `correlate2d`.
    """
    return _slide(image, kernel, padding, dilation, flip=True)


def conv_backward_input(dE_dY, kernel, dilation=1):
    """`dE/dX` for `Y = correlate2d(X, K, "valid", dilation)`: the full convolution of `dE/dY` with K.

        dE/dX[p, c] = sum_{m, o} dE/dY[p - d m, o] K[m, c, o]
                    = correlate2d(dE/dY, Rot180(K) with C_in and C_out swapped, "full")

    (ch3.2's `dE/dX = dE/dY * Rot180(K)`: the upstream gradient
    zero padded by `k_eff - 1` on each side, so the output has X's size).

    Args:
      dE_dY: `[H', W']`, `[H', W', C_out]` or `[N, H', W', C_out]`.
      kernel: `[kh, kw]` or `[kh, kw, C_in, C_out]`.
      dilation: the forward pass' dilation.

    Returns:
      dE/dX, shaped like X.
    """
    kernel = np.asarray(kernel)
    flipped = flip180(kernel)
    if flipped.ndim == 4:
        flipped = np.swapaxes(flipped, 2, 3)  # maps C_out back to C_in
    return correlate2d(dE_dY, flipped, padding="full", dilation=dilation)


def conv_backward_kernel(x, dE_dY, dilation=1):
    """`dE/dK` for `Y = correlate2d(X, K, "valid", dilation)`: X correlated with dE/dY.

        dE/dK[m, n, c, o] = sum_{b, i, j} X[b, i + d m, j + d n, c] dE/dY[b, i, j, o]

    (ch3.2's `dE/dK = Rot180(X * dE/dY)`: each weight collects
    the input it met at every output position, weighted by that output's gradient).

    Args:
      x: the forward input, `[H, W]`, `[H, W, C_in]` or `[N, H, W, C_in]`.
      dE_dY: the upstream gradient, `[H', W']`, `[H', W', C_out]` or `[N, H', W', C_out]`.
      dilation: the forward pass' dilation.

    Returns:
      dE/dK: `[kh, kw]` for a 2-D `x`, else `[kh, kw, C_in, C_out]`.
    """
    _check_positive("dilation", dilation)
    x, dy = np.asarray(x), np.asarray(dE_dY)
    single = x.ndim == 2
    if single:
        x, dy = x[None, :, :, None], dy[None, :, :, None]
    elif x.ndim == 3:
        x, dy = x[None], dy[None]
    h_out, w_out = dy.shape[1:3]
    kh = (x.shape[1] - h_out) // dilation + 1  # from H' = H - d (kh - 1)
    kw = (x.shape[2] - w_out) // dilation + 1
    dk = np.zeros((kh, kw, x.shape[3], dy.shape[3]), dtype=np.result_type(x, dy))
    for m in range(kh):
        for n in range(kw):
            window = x[:, dilation * m : dilation * m + h_out, dilation * n : dilation * n + w_out]
            dk[m, n] = np.einsum("bijc,bijo->co", window, dy)
    return dk[:, :, 0, 0] if single else dk


# ----------------------------------------------------------------------------- receptive field


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One layer of a stack, as the receptive field sees it (square kernels).

    Attributes:
      kernel: kernel (or pooling window) size `k`.
      stride: stride `s`.
      dilation: dilation `d`.
      padding: zeros padded before the first pixel (top/left); changes only `start`.
      name: the layer's name, for reports.
    """

    kernel: int
    stride: int = 1
    dilation: int = 1
    padding: int = 0
    name: str = ""


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units after one layer of a stack.

    Attributes:
      name: the layer's name.
      size: side of the receptive field in input pixels, `r`.
      jump: input pixels between two adjacent units (the effective stride), `j`.
      start: input coordinate of the centre of unit 0's field (pixel `i` at `i`);
        unit `u` is centred at `start + u * jump`.
    """

    name: str
    size: int
    jump: int
    start: float


def receptive_field(layers):
    """Receptive field size, jump and centre after each layer of a stack.

        k_eff = d (k - 1) + 1
        r_out = r_in + (k_eff - 1) j_in,   j_out = j_in s,
        start_out = start_in + ((k_eff - 1) / 2 - p) j_in,   from r = j = 1, start = 0.

    Args:
      layers: a sequence of `LayerSpec` or tuples `(kernel, stride, dilation)`
        or `(kernel, stride, dilation, padding)`.

    Returns:
      A list of `ReceptiveField`, one per layer; the last is the stack's.

    Raises:
      ValueError: if a kernel, stride or dilation is not a positive integer.
    """
    size, jump, start, out = 1, 1, 0.0, []
    for i, layer in enumerate(layers):
        spec = layer if isinstance(layer, LayerSpec) else LayerSpec(*layer)
        for field in ("kernel", "stride", "dilation"):
            _check_positive(field, getattr(spec, field))
        k_eff = spec.dilation * (spec.kernel - 1) + 1
        start = start + ((k_eff - 1) / 2 - spec.padding) * jump
        size = size + (k_eff - 1) * jump
        jump = jump * spec.stride
        out.append(ReceptiveField(spec.name or f"layer_{i}", size, jump, start))
    return out


def _square(value, what, layer):
    value = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if value[0] != value[1]:
        raise ValueError(f"only square {what} are supported. Received: {layer.name}: {value}")
    return int(value[0])


def _same_padding(k_eff, stride):
    # TensorFlow's "same": max(k_eff - s, 0) zeros in all when the size is a multiple of s,
    # the smaller half before.
    return max(k_eff - stride, 0) // 2


def _spec(layer):
    """The `LayerSpec` of a Keras layer, or None if it leaves the receptive field unchanged."""
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, _), (left, _) = layer.padding
        if top != left:
            raise ValueError(
                f"only equal top and left padding are supported. Received: {layer.name}"
            )
        return LayerSpec(1, 1, 1, int(top), layer.name)
    convs = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
    if isinstance(layer, convs):
        k = _square(layer.kernel_size, "kernels", layer)
        s = _square(layer.strides, "strides", layer)
        d = _square(layer.dilation_rate, "dilations", layer)
    elif isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
        k = _square(layer.pool_size, "pools", layer)
        s = _square(layer.strides, "strides", layer)
        d = 1
    else:
        return None
    p = _same_padding(d * (k - 1) + 1, s) if layer.padding == "same" else 0
    return LayerSpec(k, s, d, p, layer.name)


def layers_from_keras(model, until=None):
    """The `LayerSpec`s of a Keras model's main path, from its input to layer `until`.

    Conv2D (and DepthwiseConv2D, SeparableConv2D), MaxPooling2D,
    AveragePooling2D and ZeroPadding2D count; other layers (activations, batch
    normalisation, dropout) leave the receptive field unchanged. Where paths
    merge (ResNet's `Add`, Inception's `Concatenate`), the path with the
    largest receptive field is followed: the merged unit depends on the union
    of its inputs' fields, and a shortcut that skips the convolutions of a
    block sees a subset of what the block's convolutions see (same centre,
    smaller size), so the main path gives the union. `"same"` padding is taken
    as TensorFlow pads a size that is a multiple of the stride (`max(k_eff - s, 0)`
    zeros, the smaller half before); for other sizes only `start` may differ.

    Args:
      model: a `keras.Sequential` or functional `keras.Model` of 2-D layers.
      until: name of the last layer; None for the model's output layer.

    Returns:
      A list of `LayerSpec`, in order from the input.

    Raises:
      ValueError: if `until` is not a layer of the model, or a layer is not square.
    """
    if isinstance(model, keras.Sequential):
        path = []
        for layer in model.layers:
            spec = _spec(layer)
            path += [spec] if spec is not None else []
            if layer.name == until:
                return path
        if until is not None:
            raise ValueError(f"no layer named {until!r} in the model. Received: until={until!r}")
        return path
    # Keras keeps a layer's parents in its inbound nodes (`_inbound_nodes`, the graph of the
    # functional model; a layer shared between calls is followed through its first call).
    paths = {}  # layer name -> the main path of LayerSpecs up to and including it
    for layer in model.layers:  # a functional model lists its layers in topological order
        parents = [node.operation.name for n in layer._inbound_nodes[:1] for node in n.parent_nodes]
        candidates = [paths[p] for p in parents if p in paths] or [[]]
        best = max(candidates, key=lambda p: receptive_field(p)[-1].size if p else 1)
        spec = _spec(layer)
        paths[layer.name] = best + ([spec] if spec is not None else [])
    name = until if until is not None else model.layers[-1].name
    if name not in paths:
        raise ValueError(f"no layer named {name!r} in the model. Received: until={until!r}")
    return paths[name]

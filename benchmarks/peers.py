"""The benchmarks' peers: the package's three benchmark models written without Keras.

`benchmarks.throughput` races the engine against these on the same batches:

* `TFLoop`: plain TensorFlow, what TensorFlow itself reaches on a model. Weights are
  `tf.Variable`s, layers are `tf.nn` ops (`conv2d`, `x + b`, `fused_batch_norm`), the
  optimiser is Adam written out, and one `tf.function` runs all the steps of a
  measurement over one `tf.data` iterator. Mixed bfloat16 casts the weights to bfloat16
  for the arithmetic and keeps them, the Adam slots, the logits and the loss in float32,
  as Keras' `mixed_bfloat16` policy does.
* `TorchEager`: PyTorch in eager mode (`torch.nn`, `torch.optim.Adam`), bfloat16 through
  `torch.autocast`. Imported only where PyTorch is installed (`make peers`).

The architectures are those of `mp.basics.mlp` (784-256-128-10), `mp.cnn.classic_cnn`
(conv5x5(32)-pool-conv5x5(64)-pool-dense1024-dropout0.4-dense10, "same" padding) and
`mp.cnn.resnet_cifar(depth=20)` (3x3 stem, three stages of three basic blocks with 16, 32
and 64 filters, projection shortcuts, batch norm, global average pooling); each peer
checks that its parameter count equals the Keras model's.
"""

import time

import numpy as np
import tensorflow as tf

BN_EPSILON = 1.001e-5  # mp.cnn.resnet's
BN_MOMENTUM = 0.99  # Keras' BatchNormalization default


def resnet20_plan(channels=1, width=16, blocks=3):
    """The convolutions of ResNet-20 as `(name, in, out, kernel, stride)`, stage by stage."""
    plan = [("stem", channels, width, 3, 1)]
    c_in = width
    for stage in range(3):
        c_out = width * 2**stage
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            name = f"s{stage}b{block}"
            if stride != 1 or c_in != c_out:
                plan.append((f"{name}_proj", c_in, c_out, 1, stride))
            plan.append((f"{name}_1", c_in, c_out, 3, stride))
            plan.append((f"{name}_2", c_out, c_out, 3, 1))
            c_in = c_out
    return plan


class TFLoop:
    """Plain TensorFlow training of one of the three models; see the module docstring."""

    def __init__(self, model_name, input_shape, data, batch_size, precision, seed=0):
        self.batch_size = batch_size
        self.compute = tf.bfloat16 if precision == "mixed_bfloat16" else tf.float32
        rng = np.random.default_rng(seed)
        self.params, self.stats = {}, {}
        h, w, c = input_shape

        def glorot(name, shape, fan_in, fan_out):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            self.params[name] = tf.Variable(rng.uniform(-limit, limit, shape).astype(np.float32))

        def zeros(name, n, value=0.0):
            self.params[name] = tf.Variable(tf.fill([n], value))

        if model_name == "mlp":
            for i, (a, b) in enumerate([(h * w * c, 256), (256, 128), (128, 10)]):
                glorot(f"w{i}", (a, b), a, b)
                zeros(f"b{i}", b)
            self.forward = self._mlp
        elif model_name == "cnn":
            glorot("conv1", (5, 5, c, 32), 25 * c, 25 * 32)
            zeros("conv1_b", 32)
            glorot("conv2", (5, 5, 32, 64), 25 * 32, 25 * 64)
            zeros("conv2_b", 64)
            flat = (h // 4) * (w // 4) * 64
            glorot("dense", (flat, 1024), flat, 1024)
            zeros("dense_b", 1024)
            glorot("logits", (1024, 10), 1024, 10)
            zeros("logits_b", 10)
            self.forward = self._cnn
        elif model_name == "resnet20":
            self.plan = resnet20_plan(c)
            for name, c_in, c_out, k, _ in self.plan:
                fan_in = k * k * c_in
                std = np.sqrt(2.0 / fan_in)  # he_normal (untruncated: speed does not care)
                self.params[name] = tf.Variable(
                    (rng.standard_normal((k, k, c_in, c_out)) * std).astype(np.float32)
                )
                zeros(f"{name}_gamma", c_out, 1.0)
                zeros(f"{name}_beta", c_out)
                self.stats[f"{name}_mean"] = tf.Variable(tf.zeros([c_out]), trainable=False)
                self.stats[f"{name}_var"] = tf.Variable(tf.ones([c_out]), trainable=False)
            glorot("fc", (64, 10), 64, 10)
            zeros("fc_b", 10)
            self.forward = self._resnet
        else:
            raise ValueError(f"unknown model {model_name!r}")
        names = sorted(self.params)
        self.variables = [self.params[n] for n in names]
        self.m = [tf.Variable(tf.zeros_like(v)) for v in self.variables]
        self.v = [tf.Variable(tf.zeros_like(v)) for v in self.variables]
        self.t = tf.Variable(0.0)
        self.iterator = iter(data)
        self._steps = tf.function(self._train)

    @property
    def num_params(self):
        return sum(int(np.prod(v.shape)) for v in self.variables)

    def _w(self, name):
        return tf.cast(self.params[name], self.compute)

    def _dense(self, x, name, bias):
        return tf.matmul(x, self._w(name)) + self._w(bias)

    def _mlp(self, x, training):
        del training
        x = tf.reshape(x, [tf.shape(x)[0], -1])
        x = tf.nn.relu(self._dense(x, "w0", "b0"))
        x = tf.nn.relu(self._dense(x, "w1", "b1"))
        return self._dense(x, "w2", "b2")

    def _cnn(self, x, training):
        for name in ("conv1", "conv2"):
            x = tf.nn.relu(tf.nn.conv2d(x, self._w(name), 1, "SAME") + self._w(f"{name}_b"))
            x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        x = tf.reshape(x, [tf.shape(x)[0], -1])
        x = tf.nn.relu(self._dense(x, "dense", "dense_b"))
        if training:
            x = tf.nn.dropout(x, rate=0.4)
        return self._dense(x, "logits", "logits_b")

    def _bn(self, x, name, training):
        """Batch norm (fused op); the moving statistics as Keras updates them."""
        gamma, beta = self.params[f"{name}_gamma"], self.params[f"{name}_beta"]
        mean, var = self.stats[f"{name}_mean"], self.stats[f"{name}_var"]
        y, batch_mean, batch_var = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, epsilon=BN_EPSILON, is_training=training
        )
        if training:
            mean.assign(mean * BN_MOMENTUM + batch_mean * (1 - BN_MOMENTUM))
            var.assign(var * BN_MOMENTUM + batch_var * (1 - BN_MOMENTUM))
        return y

    def _conv_bn(self, x, name, stride, training):
        x = tf.nn.conv2d(x, self._w(name), stride, "SAME")
        return self._bn(x, name, training)

    def _resnet(self, x, training):
        plan = iter(self.plan)
        name, *_ = next(plan)
        x = tf.nn.relu(self._conv_bn(x, name, 1, training))
        for name, _, _, _, stride in plan:
            if name.endswith("_proj"):
                shortcut = self._conv_bn(x, name, stride, training)
            elif name.endswith("_1"):
                if name[: -len("_1")] + "_proj" not in self.params:
                    shortcut = x
                y = tf.nn.relu(self._conv_bn(x, name, stride, training))
            else:
                x = tf.nn.relu(shortcut + self._conv_bn(y, name, 1, training))
        x = tf.reduce_mean(x, axis=[1, 2])
        return self._dense(x, "fc", "fc_b")

    def _train(self, steps):
        loss = tf.constant(0.0)
        for _ in tf.range(steps):
            x, y = next(self.iterator)
            with tf.GradientTape() as tape:
                logits = tf.cast(self.forward(tf.cast(x, self.compute), True), tf.float32)
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
                )
                accuracy = tf.reduce_mean(  # the contenders all compute top-1 each step
                    tf.cast(tf.math.in_top_k(targets=y, predictions=logits, k=1), tf.float32)
                )
            grads = tape.gradient(loss, self.variables)
            self.t.assign_add(1.0)
            lr = 1e-3 * tf.sqrt(1.0 - 0.999**self.t) / (1.0 - 0.9**self.t)
            for p, g, m, v in zip(self.variables, grads, self.m, self.v):
                m.assign_add((g - m) * 0.1)
                v.assign_add((tf.square(g) - v) * 0.001)
                p.assign_sub(lr * m / (tf.sqrt(v) + 1e-7))
        return loss + 0.0 * accuracy

    def measure(self, steps):
        tic = time.perf_counter()
        self._steps(tf.constant(steps)).numpy()
        return steps * self.batch_size / (time.perf_counter() - tic)


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


class TorchEager:
    """PyTorch eager training of one of the three models on the same batches."""

    def __init__(self, model_name, input_shape, data, batch_size, precision, seed=0):
        import torch
        from torch import nn

        torch.manual_seed(seed)
        self.torch = torch
        self.batch_size = batch_size
        self.bf16 = precision == "mixed_bfloat16"
        h, w, c = input_shape
        if model_name == "mlp":
            self.model = nn.Sequential(
                nn.Flatten(),
                nn.Linear(h * w * c, 256),
                nn.ReLU(),
                nn.Linear(256, 128),
                nn.ReLU(),
                nn.Linear(128, 10),
            )
        elif model_name == "cnn":
            self.model = nn.Sequential(
                nn.Conv2d(c, 32, 5, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 5, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear((h // 4) * (w // 4) * 64, 1024),
                nn.ReLU(),
                nn.Dropout(0.4),
                nn.Linear(1024, 10),
            )
        elif model_name == "resnet20":
            self.model = _torch_resnet20(c)
        else:
            raise ValueError(f"unknown model {model_name!r}")
        self.model.train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3, eps=1e-7)
        self.iterator = iter(data.as_numpy_iterator())

    @property
    def num_params(self):
        return sum(p.numel() for p in self.model.parameters())

    def _step(self):
        torch = self.torch
        images, labels = next(self.iterator)
        x = torch.from_numpy(images).permute(0, 3, 1, 2)
        y = torch.from_numpy(labels).long()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(x)
        logits = logits.float()
        loss = torch.nn.functional.cross_entropy(logits, y)
        accuracy = (logits.argmax(1) == y).float().mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss, accuracy

    def measure(self, steps):
        tic = time.perf_counter()
        for _ in range(steps):
            loss, _ = self._step()
        loss.item()
        return steps * self.batch_size / (time.perf_counter() - tic)


def _torch_resnet20(channels):
    from torch import nn

    def bn(c):
        return nn.BatchNorm2d(c, eps=BN_EPSILON, momentum=1 - BN_MOMENTUM)

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = bn(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = bn(c_out)
            self.relu = nn.ReLU()
            self.shortcut = nn.Identity()
            if stride != 1 or c_in != c_out:
                self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), bn(c_out))

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.shortcut(x) + self.bn2(self.conv2(y)))

    layers = [nn.Conv2d(channels, 16, 3, 1, 1, bias=False), bn(16), nn.ReLU()]
    c_in = 16
    for stage in range(3):
        c_out = 16 * 2**stage
        for block in range(3):
            layers.append(Block(c_in, c_out, 2 if stage > 0 and block == 0 else 1))
            c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)

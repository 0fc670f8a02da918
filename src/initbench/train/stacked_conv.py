"""Train K same-architecture convolutional networks at once, each exactly as it would train alone.

The CNN (:func:`build_cnn`): 3x3 convolutions ("same" padding) in two stages, each followed by
2x2 max pooling (28x28 -> 14x14 -> 7x7), then a softmax Dense layer on the flattened features.
Stacked as in :mod:`initbench.train.stacked`: every weight carries a leading model axis K (so the
optimizers, losses and training loop are that module's), and in the forward pass the K models'
kernels are laid side by side along the output channels: the first convolution (one input
channel, shared by all models) is one ordinary convolution with K x C filters, every later one a
*grouped* convolution with K groups (Krizhevsky et al. 2012's grouping; model k reads and writes
channels k*C..(k+1)*C-1 only), the pooling acts per channel, and the classifier is one batched
matrix product per model. The loss is the sum of the models' losses, so each model's gradient is
exactly its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import keras
import tensorflow as tf

from initbench.config import InitializerSpec
from initbench.init import registry as initializers
from initbench.train.model import INPUT_SHAPE, bias_seed, layer_seed
from initbench.train.stacked import StackedMLP

POOL = 2


def stage_sizes(depth: int) -> tuple[int, int]:
    """Convolutions before the first and the second pooling: (ceil(depth/2), floor(depth/2))."""
    return (depth + 1) // 2, depth // 2


def build_cnn(channels: int, depth: int, activation: str, spec: InitializerSpec, seed: int,
              n_classes: int = 10, sigma_b: float = 0.0) -> keras.Model:
    """The study's CNN with ``spec`` on every kernel (conv fans: receptive field x channels, as
    Keras computes them), biases as :func:`initbench.train.model.build_model`'s, a distinct seed
    per layer."""
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    x = keras.layers.Reshape((*INPUT_SHAPE, 1), name="channel")(inputs)
    first, second = stage_sizes(depth)
    index, fan_in = 0, 9  # a 3x3 kernel over one input channel
    for n in (first, second):
        for _ in range(n):
            x = keras.layers.Conv2D(
                channels, 3, padding="same", activation=activation,
                bias_initializer=initializers.make_bias(spec.name, fan_in, bias_seed(seed, index),
                                                        sigma_b),
                kernel_initializer=initializers.make(spec.name, layer_seed(seed, index), spec.args,
                                                     activation=activation),
                name=f"conv_{index}")(x)
            index, fan_in = index + 1, 9 * channels
        x = keras.layers.MaxPooling2D(POOL, name=f"pool_{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(n_classes, activation="softmax",
                           bias_initializer=initializers.make_bias(
                               spec.name, x.shape[-1], bias_seed(seed, index), sigma_b),
                           kernel_initializer=initializers.make(spec.name, layer_seed(seed, index),
                                                                spec.args, activation="linear"),
                           name="output")(x)
    return keras.Model(inputs, x, name=f"cnn_{spec.label}")


class StackedCNN(StackedMLP):
    """K CNNs of :func:`build_cnn` trained together; see the module docstring."""

    # No XLA: on the CPU, XLA's grouped convolution is ~80x slower than TensorFlow's own (oneDNN)
    # kernel (a 4-layer, 16-filter step for 5 models: 8.1 s vs 0.10 s, measured 2026-11-30).
    JIT: ClassVar[bool] = False
    FIRST_SIDE_BY_SIDE: ClassVar[bool] = False  # every weight stacked on a leading model axis

    def __init__(self, models: Sequence[keras.Model], activation: str, *args, **kwargs) -> None:
        convs = [layer for layer in models[0].layers if isinstance(layer, keras.layers.Conv2D)]
        self.stages = stage_sizes(len(convs))
        super().__init__(models, activation, *args, **kwargs)

    def _conv(self, h: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
        """One stacked convolution: kernel (K, 3, 3, C_in, C_out) -> (3, 3, C_in, K * C_out);
        with K groups when the input holds K models' channels."""
        k, kh, kw, c_in, c_out = kernel.shape
        side_by_side = tf.reshape(tf.transpose(kernel, (1, 2, 3, 0, 4)), (kh, kw, c_in, k * c_out))
        z = tf.nn.conv2d(h, side_by_side, strides=1, padding="SAME")
        return z + tf.reshape(bias, (k * c_out,))

    def forward(self, x: tf.Tensor, collect: bool = False):
        """Softmax outputs (K, B, classes) for a shared batch x (B, 28, 28)."""
        h = x[..., None]
        pre, post = [], []
        index = 0
        for n in self.stages:
            for _ in range(n):
                z = self._conv(h, self.params[2 * index], self.params[2 * index + 1])
                h = self.activation(z)
                if collect:  # (K, B, H, W, C): each model's own feature maps
                    pre.append(self._per_model(z))
                    post.append(self._per_model(h))
                index += 1
            h = tf.nn.max_pool2d(h, POOL, POOL, "VALID")
        feats = tf.reshape(self._per_model(h), (self.k, tf.shape(x)[0], -1))  # Keras' flatten order
        w, b = self.params[2 * index], self.params[2 * index + 1]
        z = tf.einsum("kbi,kio->kbo", feats, w) + b[:, None, :]
        probs = keras.activations.softmax(z)
        if collect:
            pre.append(z)
            post.append(probs)
        return (probs, pre, post) if collect else probs

    def _per_model(self, h: tf.Tensor) -> tf.Tensor:
        """(B, H, W, K * C) -> (K, B, H, W, C)."""
        s = tf.shape(h)
        return tf.transpose(tf.reshape(h, (s[0], s[1], s[2], self.k, h.shape[-1] // self.k)),
                            (3, 0, 1, 2, 4))

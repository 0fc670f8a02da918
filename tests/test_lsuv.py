"""LSUV (Mishkin & Matas 2016) on a deep MLP and real MNIST: unit pre-activation variance.

The pre-activations are recomputed here independently of ``initbench.init.lsuv`` (a plain numpy
forward pass through the Dense kernels), on the LSUV batch and on held-out test images.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from initbench.config import InitializerSpec, ModelConfig
from initbench.data.idx import read_pair
from initbench.init import registry as initializers
from initbench.init.lsuv import LSUVError, lsuv_init, pre_activation, sample_batch
from initbench.train.model import build_model

CFG = ModelConfig((256, 256, 256), "relu")  # 784-256-256-256-10
NAMES = ["dense_0", "dense_1", "dense_2", "output"]


@pytest.fixture(scope="module")
def images(mnist):
    """5,000 training images to draw LSUV batches from, and 2,000 other training images held out.

    Held-out images come from the training file, like the pipeline's validation split: the
    first half of the MNIST test file is a different writer population (Census employees, SD-3),
    on which the pre-activation variance of an LSUV-ed model is measurably lower (~0.9).
    """
    train, _ = read_pair(mnist / "train-images-idx3-ubyte.gz", mnist / "train-labels-idx1-ubyte.gz")
    scale = np.float32(255.0)  # as initbench.data.normalize does
    return train[:5000].astype(np.float32) / scale, train[-2000:].astype(np.float32) / scale


def lsuv_model(seed=0, **args):
    spec = InitializerSpec("lsuv", "lsuv", initializers.resolve_args("lsuv", args))
    return spec, build_model(CFG, spec, seed)


def forward(model, x):
    """Pre-activations (rows, units) of every Dense layer, by a plain numpy forward pass."""
    h, out = x.reshape(len(x), -1).astype(np.float64), []
    for layer in [la for la in model.layers if isinstance(la, keras.layers.Dense)]:
        z = h @ layer.kernel.numpy().astype(np.float64) + layer.bias.numpy()
        out.append(z)
        h = np.maximum(z, 0.0)  # relu (the output's softmax is not needed)
    return out


def test_lsuv_gives_unit_preactivation_variance_on_the_batch_and_held_out(images):
    train, held_out = images
    spec, model = lsuv_model()
    batch = sample_batch(train, spec.args["batch_size"], seed=0)
    before = [z.var() for z in forward(model, batch)]
    report = lsuv_init(model, batch, spec.args["tol"], spec.args["max_iter"])
    tol = spec.args["tol"]

    assert list(report) == NAMES  # every Dense layer, the output layer included
    for name, z in zip(NAMES, forward(model, batch), strict=True):
        assert report[name]["converged"] and report[name]["iterations"] >= 1
        assert abs(z.var() - 1) < tol and report[name]["final_variance"] == pytest.approx(z.var())
    # It had to work: an orthogonal kernel has unit-norm columns, so the first layer's variance
    # is ~ E||x||^2 / 784 (~0.1 for MNIST in [0, 1]), far from 1. (Later layers' "initial"
    # variances in the report are measured after the layers before them were rescaled.)
    assert report["dense_0"]["initial_variance"] == pytest.approx(before[0], rel=1e-5)
    assert before[0] < 0.2 and report["dense_0"]["scale"] > 2

    # Held out: the batch variance is itself an estimate from 256 images. With s_i the mean
    # square deviation of image i's pre-activations (about 0.35 here: images differ in how much
    # ink they have), the two estimates differ by sd(s_i) * sqrt(1/256 + 1/2000) ~ 0.02 (one
    # standard error; ~0.035 for the heavier-tailed logits); allow tol + 5 of those.
    for name, z in zip(NAMES, forward(model, held_out), strict=True):
        s = ((z - z.mean()) ** 2).mean(axis=1)
        slack = 5 * s.std() * math.sqrt(1 / len(batch) + 1 / len(held_out))
        assert abs(z.var() - 1) < tol + slack, (name, z.var(), slack)
        assert slack < 2 * tol, (name, slack)  # the allowance stays small


def test_without_lsuv_the_variances_are_far_from_one(images):
    train, _ = images
    _, model = lsuv_model()
    variances = [z.var() for z in forward(model, train[:256])]
    assert all(abs(v - 1) > 0.5 for v in variances), variances


def test_preactivation_helper_matches_the_numpy_forward_pass(images):
    _, model = lsuv_model()
    x = images[0][:64]
    for layer, z in zip(model.layers[2:], forward(model, x), strict=True):
        np.testing.assert_allclose(pre_activation(model, layer, x), z, rtol=1e-4, atol=1e-5)


def test_non_zero_biases_make_it_iterate_and_it_still_converges(images):
    train, _ = images
    _, model = lsuv_model(seed=1)
    rng = np.random.default_rng(0)
    for layer in model.layers[2:]:
        layer.bias.assign(rng.normal(0.0, 0.5, layer.bias.shape).astype("float32"))
    report = lsuv_init(model, train[:256], tol=0.01, max_iter=50)
    assert max(r["iterations"] for r in report.values()) > 1
    for z in forward(model, train[:256]):
        assert abs(z.var() - 1) < 0.01


def test_too_few_iterations_is_reported_and_warned(images):
    _, model = lsuv_model(seed=2)
    for layer in model.layers[2:]:
        layer.bias.assign(np.full(layer.bias.shape, 0.3, "float32") * np.arange(layer.bias.shape[0]) / 100)
    with pytest.warns(RuntimeWarning, match="LSUV: layer"):
        report = lsuv_init(model, images[0][:256], tol=1e-9, max_iter=1)
    assert not all(r["converged"] for r in report.values())
    assert all(r["iterations"] == 1 for r in report.values())


def test_same_seed_and_batch_give_identical_weights(images):
    batch = images[0][:256]
    models = [lsuv_model(seed=5)[1] for _ in range(2)]
    for model in models:
        lsuv_init(model, batch)
    for a, b in zip(models[0].get_weights(), models[1].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_zero_kernel_and_bad_arguments_are_errors(images):
    x = images[0][:32]
    _, model = lsuv_model()  # params reject a constant base; lsuv_init still guards a zero kernel
    dense = model.get_layer("dense_0")
    dense.kernel.assign(np.zeros(dense.kernel.shape, np.float32))
    with pytest.raises(LSUVError, match=r"layer 'dense_0': pre-activation variance on the batch is 0"):
        lsuv_init(model, x)
    with pytest.raises(initializers.InitializerError, match="random initializer"):
        initializers.resolve_args("lsuv", {"base": "zeros"})
    _, model = lsuv_model()
    with pytest.raises(LSUVError, match=r"argument 'tol' must be a number > 0, got 0"):
        lsuv_init(model, x, tol=0)
    with pytest.raises(LSUVError, match=r"argument 'max_iter' must be an int >= 1, got 0"):
        lsuv_init(model, x, max_iter=0)
    with pytest.raises(LSUVError, match=r"at least 2 examples"):
        lsuv_init(model, x[:1])


def test_sample_batch():
    x = np.arange(100)
    a, b = sample_batch(x, 10, seed=1), sample_batch(x, 10, seed=1)
    np.testing.assert_array_equal(a, b)
    assert len(set(a)) == 10 and not np.array_equal(a, sample_batch(x, 10, seed=2))
    assert len(sample_batch(x, 500, seed=0)) == 100

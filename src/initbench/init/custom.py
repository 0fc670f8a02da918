"""Initializers Keras lacks, as serializable ``keras.initializers.Initializer`` subclasses.

Both classes are registered with ``keras.saving.register_keras_serializable(package="initbench")``,
so a saved ``.keras`` model that uses them reloads with ``keras.models.load_model`` and no
``custom_objects`` -- provided this module has been imported (``initbench.initializers`` imports
it). Conventions as in Keras: a kernel of shape (..., n_in, n_out) is seen as the matrix
(prod(shape[:-1]), shape[-1]); fan_in = prod(shape[:-1]) (for a conv kernel (kh, kw, c_in, c_out)
that is kh*kw*c_in: the receptive field counts) and each column is one output unit.

References:
    Martens (2010), "Deep learning via Hessian-free optimization", ICML (sparse initialization).
    Le, Jaitly & Hinton (2015), "A Simple Way to Initialize Recurrent Networks of Rectified Linear
    Units", arXiv:1504.00941 (identity initialization).
"""

from __future__ import annotations

import math

import keras
import numpy as np


def sparse_nonzero(fan_in: int, sparsity: float) -> int:
    """Non-zero incoming weights per output unit: round((1 - sparsity) * fan_in), at least 1.

    Rounds half up (not Python's round-half-to-even), so 2.5 -> 3.
    """
    return max(1, min(fan_in, math.floor((1.0 - sparsity) * fan_in + 0.5)))


@keras.saving.register_keras_serializable(package="initbench")
class SparseNormal(keras.initializers.Initializer):
    """Sparse initialization (Martens 2010): a fixed number of non-zero inputs per unit.

    The kernel is viewed as the matrix (fan_in, fan_out) = (prod(shape[:-1]), shape[-1]). In every
    column (output unit) exactly ``k = round((1 - sparsity) * fan_in)`` (at least 1) entries,
    chosen uniformly without replacement, are drawn from N(0, stddev^2); the rest are 0. Hence
    E[w] = 0 and Var[w] = (k / fan_in) * stddev^2. Martens used k = 15 with stddev 1; PyTorch's
    ``torch.nn.init.sparse_`` takes the fraction of zeros (``sparsity``) and std 0.01.

    Args:
        sparsity: fraction of zero entries per column, in [0, 1).
        stddev: standard deviation of the non-zero entries, > 0.
        seed: an int (same seed -> identical weights on every call) or None (a random seed is
            fixed when the instance is created, as Keras does for unseeded initializers).
    """

    def __init__(self, sparsity: float = 0.9, stddev: float = 0.01, seed: int | None = None):
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"argument 'sparsity' must be in [0, 1), got {sparsity!r}")
        if not stddev > 0:
            raise ValueError(f"argument 'stddev' must be > 0, got {stddev!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"argument 'seed' must be an int or None, got {seed!r}")
        self.sparsity = float(sparsity)
        self.stddev = float(stddev)
        self.seed = seed
        self._seed = seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        if len(shape) < 2:
            raise ValueError(f"SparseNormal needs a kernel of rank >= 2, got shape {shape}")
        fan_in, fan_out = math.prod(shape[:-1]), shape[-1]
        k = sparse_nonzero(fan_in, self.sparsity)
        rng = np.random.default_rng(self._seed)
        # The k rows with the smallest uniform keys: a uniform k-subset, independently per column.
        rows = np.argpartition(rng.random((fan_in, fan_out)), k - 1, axis=0)[:k]
        w = np.zeros((fan_in, fan_out))
        np.put_along_axis(w, rows, rng.standard_normal((k, fan_out)) * self.stddev, axis=0)
        return keras.ops.convert_to_tensor(w.reshape(shape), dtype=dtype or keras.backend.floatx())

    def get_config(self) -> dict:
        return {"sparsity": self.sparsity, "stddev": self.stddev, "seed": self.seed}


@keras.saving.register_keras_serializable(package="initbench")
class SquareIdentity(keras.initializers.Initializer):
    """``gain * I`` for a square 2D kernel; any other shape is an error naming the shape.

    Keras' own ``Identity`` silently returns a truncated identity ``eye(fan_in, fan_out)`` for a
    non-square kernel (which zeroes inputs or outputs), and its ``get_config`` drops ``gain``, so
    a reloaded model's initializer forgets it; this class does neither. For a Dense kernel
    (fan_in, fan_out) square means fan_in == fan_out: y = gain * x at initialization.

    Args:
        gain: positive multiplicative factor.
    """

    def __init__(self, gain: float = 1.0):
        if isinstance(gain, bool) or not isinstance(gain, int | float) or not gain > 0:
            raise ValueError(f"argument 'gain' must be a positive number, got {gain!r}")
        self.gain = float(gain)

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(
                f"identity initializer needs a square 2D kernel (fan_in == fan_out), got shape "
                f"{shape}; use it only for layers whose width equals their input width"
            )
        dtype = dtype or keras.backend.floatx()
        return self.gain * keras.ops.eye(shape[0], dtype=dtype)

    def get_config(self) -> dict:
        return {"gain": self.gain}

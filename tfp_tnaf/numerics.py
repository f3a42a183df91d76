"""Log-space numerics shared by the monotone transforms and the networks.

`log(exp(a) + exp(b))` is TFP's own `tfp.math.log_add_exp`; this module adds
what TFP does not have: `log(1 - tanh(u)^2)` that never overflows, one
log-space matrix-vector product, and a matrix-vector product with one matrix
shared by a whole batch.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["log_matvec_exp", "log_sech2", "shared_matvec"]


def log_sech2(u: tf.Tensor) -> tf.Tensor:
    """`log(1 - tanh(u)^2)`, stable for large `|u|`."""
    a = tf.abs(u)
    # log1p(exp(-2a)) is softplus(-2a), exact for a non-positive argument and
    # about half the cost of TensorFlow's Softplus kernel.
    return 2.0 * (np.log(2.0) - a - tf.math.log1p(tf.exp(-2.0 * a)))


def shared_matvec(matrix: tf.Tensor, vectors: tf.Tensor) -> tf.Tensor:
    """`matrix @ v` for every `v` on the last axis of `vectors`, as one 2-D matmul.

    Args:
      matrix: `[m, n]`, shared by all vectors.
      vectors: `[..., n]`.

    Returns:
      `[..., m]`.
    """
    flat = tf.reshape(vectors, [-1, tf.shape(vectors)[-1]])
    product = tf.matmul(flat, matrix, transpose_b=True)
    return tf.reshape(product, tf.concat([tf.shape(vectors)[:-1], tf.shape(matrix)[:1]], 0))


def log_matvec_exp(log_matrix: tf.Tensor, log_vector: tf.Tensor,
                   shared: bool = False) -> tf.Tensor:
    """`log(exp(log_matrix) @ exp(log_vector))` over the last axis.

    By default a logsumexp of sums, exact for any range of values:
    `log_matrix` `[..., m, n]` broadcasts against `log_vector` `[..., n]`.

    With `shared=True`, `log_matrix` is one `[m, n]` matrix shared by every
    vector, and the product is a dense matmul of the exponentials, each
    shifted by its maximum (the log-sum-exp trick) rather than an
    `[..., m, n]` logsumexp. A sum that still underflows (a row's large
    entries meet only the vector's small ones) is floored at the smallest
    normal number: use it only where such a term is negligible next to
    another it is added to.
    """
    if not shared:
        return tf.reduce_logsumexp(log_matrix + log_vector[..., tf.newaxis, :], axis=-1)
    row_max = tf.reduce_max(log_matrix, axis=-1)
    vector_max = tf.stop_gradient(tf.reduce_max(log_vector, axis=-1, keepdims=True))
    product = shared_matvec(tf.exp(log_matrix - row_max[:, tf.newaxis]),
                            tf.exp(log_vector - vector_max))
    tiny = np.finfo(log_vector.dtype.as_numpy_dtype).tiny
    return tf.math.log(tf.maximum(product, tiny)) + row_max + vector_max

"""NeuralAutoregressive (NAF): a MADE conditioner driving a monotone transform."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tfp_tnaf import checks
from tfp_tnaf.bijectors.autoregressive import MonotoneAutoregressive
from tfp_tnaf.nn.made import MadeConditioner
from tfp_tnaf.roots import RootSolver
from tfp_tnaf.transforms import LINEAR_SLOPE, MonotoneTransform, make_transform

__all__ = ["NeuralAutoregressive"]


class NeuralAutoregressive(MonotoneAutoregressive):
    """Neural autoregressive flow (NAF): MADE-conditioned monotone transforms.

    For data `y` in R^D and an autoregressive order, each dimension is mapped to
    noise by an increasing scalar transform whose pseudo-parameters depend on
    the dimensions before it:

      x_i = tau(y_i; theta_i),   theta_i = MADE(y_<i [, c])_i,

    with `tau` a deep sigmoidal flow (DSF) or deep dense sigmoidal flow (DDSF)
    (see `DeepSigmoidalTransform`), or any `MonotoneTransform`. The Jacobian
    `dx/dy` is triangular, so

      log |det dx/dy| = sum_i log tau'(y_i; theta_i).

    Direction, as `tfb.MaskedAutoregressiveFlow`: `inverse` (data -> noise) is
    one MADE pass, which is what `TransformedDistribution.log_prob` uses;
    `forward` (noise -> data, sampling) visits the D dimensions in order, each
    a MADE pass and a bracketed root solve of `tau(y_i; theta_i) = x_i`, with
    gradients by the implicit function theorem (samples are reparameterised).
    `tfb.Invert(NeuralAutoregressive(...))` is the inverse-autoregressive
    variant: sampling in one pass, density of outside points sequential.

    #### Example

    ```python
    tfd = tfp.distributions
    flow = NeuralAutoregressive(event_size=2, transform="dsf", transform_units=16,
                                hidden_units=[64, 64])
    naf = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(0., 1.), [2]), flow)
    naf.log_prob(y)          # one MADE pass
    samples = naf.sample(100)  # D sequential steps
    iaf = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(0., 1.), [2]), tfb.Invert(flow))
    ```

    Conditional densities `p(y | c)` take `conditional_event_size=C` and
    `bijector_kwargs={"conditional_input": c}`, exactly as MAF.

    Args:
      event_size: D, the size of the (rank-1) event.
      transform: `"dsf"`, `"ddsf"`, `"network"` or a `MonotoneTransform`.
      transform_units: hidden width of each dimension's transform (sigmoids
        per layer for DSF and DDSF).
      transform_layers: layers of the transform; default 1 (DSF), 2 (DDSF).
      linear_slope: slope of the linear term added to each transform (see
        `DeepSigmoidalTransform`); 0 gives the paper's transforms exactly.
      hidden_units: hidden layer sizes of the MADE conditioner.
      activation: activation of the MADE hidden layers.
      input_order: `'left-to-right'`, `'right-to-left'`, `'random'` or a
        permutation of `1..D` (the degrees, as `tfb.AutoregressiveNetwork`).
      conditional_event_size: size of the conditioning vector, or `None`.
      kernel_initializer: initializer of the MADE kernels.
      root_solver: `RootSolver` used by `forward`.
      dtype: float dtype of the variables and of the inputs.
      validate_args: check inputs are finite.
      name: name of the bijector.

    Raises:
      ValueError: on an unknown transform or a non-positive size.

    #### References

    [1]: Chin-Wei Huang, David Krueger, Alexandre Lacoste and Aaron Courville.
         Neural Autoregressive Flows. In _ICML_, 2018.
         https://arxiv.org/abs/1804.00779
    [2]: Mathieu Germain, Karol Gregor, Iain Murray and Hugo Larochelle. MADE:
         Masked Autoencoder for Distribution Estimation. In _ICML_, 2015.
         https://arxiv.org/abs/1502.03509
    """

    def __init__(self,
                 event_size: int,
                 transform: str | MonotoneTransform = "dsf",
                 transform_units: int = 16,
                 transform_layers: int | None = None,
                 linear_slope: float = LINEAR_SLOPE,
                 hidden_units: Sequence[int] = (64, 64),
                 activation: Any = "relu",
                 input_order: Any = "left-to-right",
                 conditional_event_size: int | None = None,
                 kernel_initializer: Any = "glorot_uniform",
                 root_solver: RootSolver | None = None,
                 dtype: Any = tf.float32,
                 validate_args: bool = False,
                 name: str = "neural_autoregressive"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype = checks.floating_dtype(dtype)
            transform = make_transform(transform, transform_units, transform_layers,
                                       linear_slope, dtype)
            conditioner = MadeConditioner(
                event_size, checks.input_order(event_size, input_order), transform.num_params,
                hidden_units=hidden_units, activation=activation,
                kernel_initializer=kernel_initializer,
                conditional_event_size=conditional_event_size, dtype=dtype)
            super().__init__(conditioner, transform, root_solver, validate_args, parameters,
                             name)

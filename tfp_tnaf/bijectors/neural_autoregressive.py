"""NeuralAutoregressive: a MADE conditioner driving deep (dense) sigmoidal flows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_tnaf.bijectors.autoregressive import MonotoneAutoregressive
from tfp_tnaf.bijectors.monotone import (
    LINEAR_SLOPE,
    DeepDenseSigmoidal,
    DeepSigmoidal,
    check_linear_slope,
    sigmoidal_layers,
)
from tfp_tnaf.roots import RootSolver

tfb = tfp.bijectors

__all__ = ["NeuralAutoregressive"]

TRANSFORMS = {"dsf": DeepSigmoidal, "ddsf": DeepDenseSigmoidal}
DEFAULT_LAYERS = {"dsf": 1, "ddsf": 2}


class NeuralAutoregressive(MonotoneAutoregressive):
    """Neural autoregressive flow (NAF): MADE-conditioned sigmoidal transforms.

    For data `y` in R^D and an autoregressive order, each dimension is mapped to
    noise by an increasing scalar transform whose pseudo-parameters depend on
    the dimensions before it:

      z_i = tau(y_i; theta_i),   theta_i = MADE(y_<i [, c])_i,

    with `tau` a deep sigmoidal flow (DSF) or deep dense sigmoidal flow (DDSF)
    (see `DeepSigmoidal`, `DeepDenseSigmoidal`). The Jacobian `dz/dy` is
    triangular, so

      log |det dz/dy| = sum_i log tau'(y_i; theta_i).

    Direction, as `tfb.MaskedAutoregressiveFlow`: `inverse` (data -> noise) is
    one MADE pass, which is what `TransformedDistribution.log_prob` uses;
    `forward` (noise -> data, sampling) visits the D dimensions in order, each
    a MADE pass and a bracketed root solve of `tau(x_i; theta_i) = z_i`, with
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
    x = naf.sample(100)      # D sequential steps
    iaf = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(0., 1.), [2]), tfb.Invert(flow))
    ```

    Conditional densities `p(y | c)` take `conditional_event_size=C` and
    `bijector_kwargs={"conditional_input": c}`, exactly as MAF.

    Args:
      event_size: D, the size of the (rank-1) event.
      transform: `"dsf"` or `"ddsf"`.
      transform_units: sigmoid units `d` of each transform layer.
      transform_layers: layers of the transform; default 1 (DSF), 2 (DDSF).
      linear_slope: slope of the linear term added to each transform (see
        `DeepSigmoidal`); 0 gives the paper's transforms exactly.
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
                 transform: str = "dsf",
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
        if transform not in TRANSFORMS:
            raise ValueError(f"`transform` must be one of {sorted(TRANSFORMS)}; got "
                             f"{transform!r}.")
        if transform_layers is None:
            transform_layers = DEFAULT_LAYERS[transform]
        hidden_units = list(hidden_units)
        if not hidden_units or any(
                isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden_units):
            raise ValueError("`hidden_units` must be a non-empty list of positive integers; "
                             f"got {hidden_units!r}.")
        self._transform_class = TRANSFORMS[transform]
        self._transform_name = transform
        # num_params validates transform_units and transform_layers.
        self._num_params = self._transform_class.num_params(transform_units, transform_layers)
        self._transform_units = transform_units
        self._transform_layers = transform_layers
        self._linear_slope = check_linear_slope(linear_slope)
        with tf.name_scope(name) as name:
            super().__init__(event_size, input_order, conditional_event_size, root_solver,
                             dtype, validate_args, parameters, name)
            conditional = conditional_event_size is not None
            self._made = tfb.AutoregressiveNetwork(
                params=self._num_params,
                event_shape=[self.event_size],
                conditional=conditional,
                conditional_event_shape=(conditional_event_size,) if conditional else None,
                hidden_units=hidden_units,
                input_order=self.input_order,
                activation=activation,
                kernel_initializer=kernel_initializer,
                dtype=self.dtype)
            # TFP's MADE creates its Activation layers without a dtype, so they
            # take Keras' floatx and would round float64 activations to float32.
            floatx = tf_keras.backend.floatx()
            tf_keras.backend.set_floatx(self.dtype.name)
            try:
                self._made.build((None, self.event_size))
            finally:
                tf_keras.backend.set_floatx(floatx)

    @property
    def transform(self) -> str:
        return self._transform_name

    @property
    def conditioner(self) -> tf.Module:
        """The MADE network, a `tfb.AutoregressiveNetwork`."""
        return self._made

    def _transform(self, y, params):
        return sigmoidal_layers(y, params, self._transform_units, self._transform_layers,
                                dense=self._transform_name == "ddsf",
                                linear_slope=self._linear_slope)

    def _conditioner(self, y, conditional_input):
        if conditional_input is None:
            return self._made(y)
        return self._made(y, conditional_input=conditional_input)

    def _inverse_and_log_det(self, y, conditional_input):
        return self._transform(y, self._conditioner(y, conditional_input))

    def _decoder(self, z, conditional_input):
        def step_fn(i, x, state):
            params = tf.gather(self._conditioner(x, conditional_input), i, axis=-2)
            return self._transform, params, state
        return step_fn, ()

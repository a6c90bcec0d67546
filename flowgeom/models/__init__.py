"""Models: the :class:`Model` protocol and the concrete models that implement it.

Submodules
----------
base
    :class:`Model` (the plug-in contract), :func:`check_params`, :func:`hessian_from_hvp`.
deep_linear
    :class:`DeepLinearNetwork`, the paper's model.
mlp
    :class:`MLP` (tanh, softplus, sigmoid, linear activations), :func:`teacher_student`.
diagonal
    :class:`DiagonalLinearNetwork`: f(x) = <w_1 ⊙ ... ⊙ w_D, x>, an exactly solvable non-SVD model
    (closed-form critical sets and saddle sequence in ``diagonal_theory``).
jax_model
    :class:`JaxModel`, a JAX loss wrapped as a Model (optional extra ``flowgeom[jax]``).
"""

from flowgeom.models.base import Model, check_params, hessian_from_hvp
from flowgeom.models.deep_linear import DeepLinearNetwork
from flowgeom.models.diagonal import DiagonalLinearNetwork
from flowgeom.models.jax_model import JaxModel
from flowgeom.models.mlp import MLP, mlp_for_problem
from flowgeom.models.teacher import teacher_student

__all__ = ["DeepLinearNetwork", "DiagonalLinearNetwork", "JaxModel", "MLP", "Model", "check_params", "hessian_from_hvp", "mlp_for_problem",
           "teacher_student"]

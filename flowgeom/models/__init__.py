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

from flowgeom._lazy import attach as _attach

# name -> module, imported on first use (flowgeom._lazy)
_EXPORTS = {
    "flowgeom.models.base": ("Model", "check_params", "hessian_from_hvp"),
    "flowgeom.models.deep_linear": ("DeepLinearNetwork",),
    "flowgeom.models.diagonal": ("DiagonalLinearNetwork",),
    "flowgeom.models.jax_model": ("JaxModel",),
    "flowgeom.models.mlp": ("MLP", "mlp_for_problem"),
    "flowgeom.models.teacher": ("teacher_student",),
}
__getattr__, __dir__ = _attach(__name__, _EXPORTS)

__all__ = ["DeepLinearNetwork", "DiagonalLinearNetwork", "JaxModel", "MLP", "Model", "check_params", "hessian_from_hvp", "mlp_for_problem",
           "teacher_student"]

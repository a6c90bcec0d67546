"""Tests for flowgeom.jax_model (the optional JAX adapter; skipped where JAX is not installed).

Independent reference: flowgeom.networks.DeepLinearNetwork, whose hand-written loss, gradient,
exact forward-mode HVP and invariants are tested against finite differences and complex step in
tests/test_networks.py; here the same loss is written in jax.numpy and differentiated by JAX.
"""

import pickle
import subprocess
import sys

import numpy as np
import pytest

from flowgeom import DeepLinearNetwork

WIDTHS = (3, 2, 2)
S = np.array([2.0, 1.0])


def _dln_loss(theta):
    import jax.numpy as jnp

    W1 = theta[:6].reshape(2, 3)
    W2 = theta[6:].reshape(2, 2)
    Sigma = jnp.zeros((2, 3)).at[0, 0].set(S[0]).at[1, 1].set(S[1])
    return 0.5 * jnp.sum((Sigma - W2 @ W1) ** 2)


def _dln_invariant(theta):
    W1 = theta[:6].reshape(2, 3)
    W2 = theta[6:].reshape(2, 2)
    return (W2.T @ W2 - W1 @ W1.T).ravel()


def test_import_flowgeom_does_not_import_jax():
    code = "import sys, flowgeom, flowgeom.models.jax_model, flowgeom.critical.searched; assert 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_jax_says_how_to_install(monkeypatch):
    from flowgeom.models.jax_model import JaxModel

    monkeypatch.setitem(sys.modules, "jax", None)  # makes `import jax` raise ImportError
    with pytest.raises(ImportError, match=r"flowgeom\[jax\]"):
        JaxModel(lambda t: t[0], 1)


@pytest.fixture(scope="module")
def pair():
    pytest.importorskip("jax")
    from flowgeom.models.jax_model import JaxModel

    return JaxModel(_dln_loss, 10, conserved_fn=_dln_invariant), DeepLinearNetwork.canonical(WIDTHS, S)


def test_derivatives_match_the_hand_written_network(pair):
    jm, net = pair
    rng = np.random.default_rng(0)
    th, v = rng.standard_normal((2, 2, 3, 10))
    np.testing.assert_allclose(jm.loss(th), net.loss(th), rtol=1e-14)
    np.testing.assert_allclose(jm.grad(th), net.grad(th), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(jm.hvp(th, v), net.hvp(th, v), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jm.hvp(th[0, 0], v), net.hvp(th[0, 0], v), rtol=1e-12, atol=1e-12)  # broadcast
    np.testing.assert_allclose(jm.hessian(th), net.hessian(th), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jm.conserved(th), net.conserved(th), rtol=1e-13, atol=1e-13)
    assert jm.grad(th).dtype == np.float64 and jm.grad(th).shape == (2, 3, 10)
    assert jm.loss(th[0, 0]).shape == ()


def test_pickle_and_flow(pair):
    from flowgeom.flow import integrate

    jm, net = pair
    back = pickle.loads(pickle.dumps(jm))
    th = np.random.default_rng(1).standard_normal((2, 10))
    np.testing.assert_array_equal(back.grad(th), jm.grad(th))
    a = integrate(jm, th, 2.0, rtol=1e-10, atol=1e-12, backend="numpy")
    b = integrate(net, th, 2.0, rtol=1e-10, atol=1e-12, backend="numpy")
    np.testing.assert_allclose(a.y_final, b.y_final, rtol=1e-9, atol=1e-9)
    assert np.all(a.invariant_drift < 1e-8)


def test_no_conserved_and_bad_inputs():
    pytest.importorskip("jax")
    from flowgeom.models.jax_model import JaxModel

    m = JaxModel(_dln_loss, 10)
    assert m.conserved(np.zeros((4, 10))).shape == (4, 0)
    with pytest.raises(ValueError, match="`n_params`"):
        JaxModel(_dln_loss, 0)
    with pytest.raises(TypeError, match="`loss_fn`"):
        JaxModel(3.0, 2)
    with pytest.raises(ValueError, match="scalar"):
        JaxModel(lambda t: t * 2.0, 3)

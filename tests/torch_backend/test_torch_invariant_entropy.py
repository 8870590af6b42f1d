"""The invariant, orthographic, entropy and free-energy core on torch tensors (issue 16).

Each public function of ``core/invariant.py``, ``core/orthographic.py``, ``core/entropy.py``
and ``core/free_energy.py`` gets the numpy result from float64 tensors, on hypothesis
cases with adversarial spectra (repeated, clustered, graded down to 1e-12 sigma_max),
non-square widths and depths up to 8.

Tolerances. Well-conditioned inputs: 1e-12 relative to the result. Otherwise the two
backends' LAPACKs (numpy's OpenBLAS, torch's own) differ by round-off, which the formula
amplifies by a condition number that numpy suffers just the same:

* entropy and the drifts depend on log sigma and on the singular vectors of X: a
  backward-stable SVD knows sigma_k to eps sigma_max, i.e. log sigma_k to
  eps cond(X). Tolerance 1e-12 + 1e-14 cond(X) (times the size of the result);
* the invariant maps solve the normal equations C_W^* C_W S = rhs; kappa_C, the
  condition number of that operator, is computed (``normal_condition``; it is not
  a function of the layer spectra alone): 1e-12 + 1e-14 kappa_C (the
  Hessian: times the size max|S| max|xi| of its Weingarten term C_xi(S));
* the orthographic projection solves Newton systems with the Jacobi matrices T_ij of
  condition ~ (lam_1 / lam_r)^2, lam = sigma^{1/N}: 1e-12 + 1e-14 (lam_1 / lam_r)^2.

float32: the result of float64 numpy to a stated tolerance (1e-4 relative on
well-conditioned inputs, where eps32 = 1.2e-7 times the small condition numbers of
the cases); the result keeps float32.
"""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("array_api_compat")

from dlnmanifolds.core import entropy as E  # noqa: E402
from dlnmanifolds.core import invariant as I  # noqa: E402, E741
from dlnmanifolds.core import orthographic as O  # noqa: E402, E741
from dlnmanifolds.core.balanced import balanced_factors  # noqa: E402
from dlnmanifolds.core.network import invariants  # noqa: E402
from dlnmanifolds.testing.conversions import forbid_array_conversions  # noqa: E402

# ``dlnmanifolds.core`` re-exports the function ``free_energy`` under the module's name,
# so the module is imported by its full name.
F = importlib.import_module("dlnmanifolds.core.free_energy")

SETTINGS = settings(max_examples=40, deadline=None)
EPS = float(np.finfo(float).eps)


def t(a):
    if isinstance(a, (list, tuple)):
        return [t(x) for x in a]
    return torch.from_numpy(np.ascontiguousarray(a))


def as_np(a):
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def rel(got, expected) -> float:
    """max |got - expected| / max(1, max |expected|), over a list of layers too."""
    if isinstance(expected, (list, tuple)):
        return max((rel(g, e) for g, e in zip(got, expected)), default=0.0)
    g, e = as_np(got), as_np(expected)
    assert g.shape == e.shape
    return float(np.max(np.abs(g - e), initial=0.0) / max(1.0, np.max(np.abs(e), initial=0.0)))


#: Largest error / tolerance seen per check (read by the note's measurement run).
OBSERVED: dict[str, float] = {}


def within(err: float, tol: float, what: str) -> bool:
    """err <= tol, remembering the largest err / tol of ``what``."""
    OBSERVED[what] = max(OBSERVED.get(what, 0.0), err / tol)
    return err <= tol


def orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


@st.composite
def spectra(draw, k: int, min_ratio: float = 1e-12):
    """k decreasing singular values: random, repeated, clustered or graded to min_ratio."""
    kind = draw(st.sampled_from(["random", "repeated", "cluster", "graded"]))
    top = draw(st.floats(0.2, 5.0))
    if kind == "repeated":
        return np.full(k, top), kind
    if kind == "cluster":
        return top * (1.0 + 1e-9 * np.arange(k, 0, -1)), kind
    if kind == "graded":
        ratio = draw(st.sampled_from([min_ratio, np.sqrt(min_ratio), 1e-3]))
        return top * np.geomspace(1.0, max(ratio, min_ratio), k), kind
    seed = draw(st.integers(0, 2**31 - 1))
    return top * np.sort(np.random.default_rng(seed).uniform(0.3, 1.0, k))[::-1], kind


@st.composite
def end_to_end(draw, square: bool = False, batch: bool = False):
    """(X, depth, widths, cond(X)): X = U diag(s) V^T of adversarial spectrum."""
    m = draw(st.integers(1, 4))
    n = m if square else draw(st.integers(1, 4))
    depth = draw(st.sampled_from([1, 2, 3, 5, 8]))
    r = min(m, n)
    s, _ = draw(spectra(r))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    shape = (2,) if batch else ()
    xs = []
    for _ in range(int(np.prod(shape))):
        u, v = orthogonal(rng, m)[:, :r], orthogonal(rng, n)[:, :r]
        xs.append((u * s) @ v.T)
    x = np.stack(xs).reshape(shape + (m, n))
    inner = tuple(draw(st.integers(r, r + 2)) for _ in range(depth - 1))
    return x, depth, (n,) + inner + (m,), float(s[0] / s[-1])


# --- entropy ---------------------------------------------------------------------------


@SETTINGS
@given(end_to_end())
def test_entropy_agrees_with_numpy(case):
    x, depth, widths, cond = case
    tol = 1e-12 + 1e-14 * cond
    expected = E.boltzmann_entropy(x, depth, widths)
    got = E.boltzmann_entropy(t(x), depth, widths)
    assert isinstance(expected, float)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64 and got.ndim == 0
    assert within(rel(got, expected), tol, "boltzmann_entropy")
    grad = E.entropy_gradient(x, depth, widths)
    got = E.entropy_gradient(t(x), depth, widths)
    assert got.dtype == torch.float64
    assert within(rel(got, grad), tol, "entropy_gradient")


def test_entropy_volume_constants_are_python_floats():
    assert isinstance(E.log_stiefel_volume(5, 3), float)
    assert isinstance(E.orthogonal_group_volume(3), float)
    # the orbit volume of d = N = 2 from a tensor (the docstring's closed form)
    w = torch.diag(torch.tensor([2.0, 1.0], dtype=torch.float64))
    expected = np.log(4 * np.sqrt(2) * np.pi * np.sqrt(3))
    assert abs(float(E.boltzmann_entropy(w, 2)) - expected) <= 1e-14


# --- free energy -----------------------------------------------------------------------


@SETTINGS
@given(end_to_end(square=True, batch=True), st.integers(0, 2**31 - 1))
def test_free_energy_maps_agree_with_numpy(case, seed):
    x, depth, _, cond = case
    assume(cond < 1e12)  # require_full_rank's threshold is 1e-13: keep clear of it
    egrad = np.random.default_rng(seed).standard_normal(x.shape)
    tol = 1e-12 + 1e-14 * cond
    beta = 2.5
    for fn in (F.coordinate_laplacian, F.laplacian_of_phi):
        expected, got = fn(x, depth), fn(t(x), depth)
        assert got.dtype == torch.float64
        assert within(rel(got, expected), tol, fn.__name__)
    for potential in F.POTENTIALS:
        expected = F.langevin_drift(x, egrad, depth, beta, potential)
        got = F.langevin_drift(t(x), t(egrad), depth, beta, potential)
        assert within(rel(got, expected), tol, f"langevin_drift {potential}")
    expected = F.free_energy_gradient(x, egrad, depth, beta)
    got = F.free_energy_gradient(t(x), t(egrad), depth, beta)
    assert within(rel(got, expected), tol, "free_energy_gradient")
    energy = lambda a: 0.5 * (a**2).sum()  # noqa: E731 (numpy and torch alike)
    expected = F.free_energy(x[0], depth, energy, beta)
    got = F.free_energy(t(x[0]), depth, energy, beta)
    assert isinstance(expected, float) and isinstance(got, torch.Tensor) and got.ndim == 0
    assert within(rel(got, expected), tol, "free_energy")
    got = F.free_energy(t(x[0]), depth, 1.5, beta)  # a number for the energy
    assert within(rel(got, F.free_energy(x[0], depth, 1.5, beta)), tol, "free_energy")


# --- invariant (M_G) ---------------------------------------------------------------------


@st.composite
def networks(draw, min_ratio: float = 1e-5):
    """(weights, xi, eta, kappa_C): generic layers W_p = U_p diag(s_p) V_p^T (not
    balanced), non-square widths, depth up to 8, adversarial layer spectra."""
    depth = draw(st.integers(2, 8))
    widths = tuple(draw(st.integers(1, 4)) for _ in range(depth + 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    weights = []
    for p in range(depth):
        m, n = widths[p + 1], widths[p]
        k = min(m, n)
        s, _ = draw(spectra(k, min_ratio))
        u, v = orthogonal(rng, m)[:, :k], orthogonal(rng, n)[:, :k]
        weights.append((u * s) @ v.T)
    xi = [rng.standard_normal(w.shape) for w in weights]
    eta = [rng.standard_normal(w.shape) for w in weights]
    return weights, xi, eta, normal_condition(weights)


def normal_condition(weights, other=None) -> float:
    """cond_2 of the normal operator S -> C_V^* C_W(S) (V = ``other``, default W) on
    Sym(d_1) x ... x Sym(d_{N-1}), assembled column by column in orthonormal bases (at
    most 7 x 10 unknowns here). Its spectrum depends on the layer spectra and on how the
    layers' ranges meet (a wide inner layer between two narrow ones is nearly unseen),
    so it is computed."""
    other = weights if other is None else other
    bases = [I._sym_basis(w.shape[0], w) for w in weights[:-1]]
    columns = []
    for p, basis in enumerate(bases):
        for e in basis:
            s = [np.zeros_like(b[0]) for b in bases]
            s[p] = e
            image = I._apply(weights, other, s)
            columns.append(np.concatenate([I._coefficients(m, b) for m, b in zip(image, bases)]))
    return float(np.linalg.cond(np.array(columns).T))


def _both(fn, *args):
    """fn on numpy and on tensors; (numpy result, torch result), or None if numpy
    finds the level set singular there (then torch must too, unless at the threshold)."""
    try:
        expected = fn(*args)
    except I.NotRegularError:
        return None
    got = fn(*[t(a) if isinstance(a, (list, np.ndarray)) else a for a in args])
    return expected, got


@SETTINGS
@given(networks())
def test_invariant_maps_agree_with_numpy(case):
    weights, xi, eta, kappa = case
    assume(kappa < 1e12)  # clear of the singular-pivot threshold (rcond 1e-13)
    tol = 1e-12 + 1e-14 * kappa
    pair = _both(I.invariant_tangent_projection, weights, xi)
    assume(pair is not None)
    expected, got = pair
    assert all(isinstance(g, torch.Tensor) and g.dtype == torch.float64 for g in got)
    assert within(rel(got, expected), tol, "invariant_tangent_projection")
    multipliers = _both(I.invariant_normal_multipliers, weights, xi)
    assert within(rel(multipliers[1], multipliers[0]), tol, "invariant_normal_multipliers")
    # The Weingarten term C_xi(S) carries the error of S (relative eps kappa_C) at the
    # size |S| |xi| of the term, which P_T may then cancel: scale by that size.
    size = max(float(np.abs(m).max()) for m in multipliers[0]) * max(
        float(np.abs(x).max()) for x in xi
    )
    hessian = _both(I.invariant_hessian, weights, xi, eta, xi)
    assert within(rel(hessian[1], hessian[0]), tol * max(1.0, size), "invariant_hessian")
    rhs = [0.5 * (a + a.T) for a in invariants(xi)]
    solved = _both(I.normal_solve, weights, rhs)
    assert within(rel(solved[1], solved[0]), tol, "normal_solve")
    other = [w + 1e-3 * e for w, e in zip(weights, eta)]  # C_V^* C_W, V != W
    solved = _both(I.normal_solve, weights, rhs, other)
    if solved is not None:
        # its own operator's condition (a found case differed by 1.0e-5 where the
        # condition of C_W^* C_W allowed 3.9e-6)
        tol_other = 1e-12 + 1e-14 * normal_condition(weights, other)
        assert within(rel(solved[1], solved[0]), tol_other, "normal_solve (V != W)")


@SETTINGS
@given(networks())
def test_invariant_retraction_agrees_with_numpy(case):
    weights, xi, _, kappa = case
    assume(kappa < 1e12)
    scale = max(1.0, max(float(np.abs(w).max()) for w in weights))
    step = [1e-2 * scale * x / max(1.0, float(np.abs(x).max())) for x in xi]
    try:
        expected = I.invariant_retraction(weights, step)
    except I.NotRegularError:
        assume(False)
    got = I.invariant_retraction(t(weights), t(step))
    assert within(rel(got, expected), 1e-12 + 1e-14 * kappa, "invariant_retraction")
    # on the level set: G(R) = G(W), to the Newton tolerance
    target = invariants(weights)
    bound = 1e-13 * (1.0 + scale**2)
    assert rel(invariants(got), target) <= bound


def test_invariant_dimension_is_an_int():
    assert I.invariant_dimension((3, 4, 5, 2)) == 12 + 20 + 10 - 10 - 15


def test_normal_solver_conjugate_gradient_path_agrees():
    """Blocks above DENSE_BLOCK_LIMIT (d = 32: 528 unknowns) are solved by CG."""
    rng = np.random.default_rng(3)
    weights = [rng.standard_normal((32, 32)) / 6 + np.eye(32) for _ in range(2)]
    xi = [rng.standard_normal((32, 32)) for _ in range(2)]
    assert not I._dense(weights)
    expected = I.invariant_tangent_projection(weights, xi)
    got = I.invariant_tangent_projection(t(weights), t(xi))
    assert rel(got, expected) <= 1e-11
    # a projection: DG(W)[P_T xi] = -2 C_W^*(P_T xi) = 0
    from dlnmanifolds.core.balanced_tangent import normal_generator_adjoint

    residual = normal_generator_adjoint(t(weights), got)
    assert max(float(r.abs().max()) for r in residual) <= 1e-10


# --- orthographic ------------------------------------------------------------------------


@st.composite
def balanced_batches(draw):
    """(base, ambient, (lam_1/lam_r)^2): balanced networks of square width d <= 4, depth up
    to 8, a batch of 2 paths, ambient points a small normal distance off."""
    d = draw(st.integers(1, 4))
    depth = draw(st.integers(2, 8))
    s, _ = draw(spectra(d))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    nets = []
    for k in range(2):
        x = (orthogonal(rng, d) * s) @ orthogonal(rng, d).T
        nets.append(balanced_factors(x, depth, rng=k))
    base = [np.stack([net[p] for net in nets]) for p in range(depth)]
    lam = s ** (1.0 / depth)
    # steps well inside the reach of M (~ lam_r): the projection exists and is unique
    h = 1e-3 * lam[-1]
    ambient = [b + h * rng.standard_normal(b.shape) for b in base]
    return base, ambient, float((lam[0] / lam[-1]) ** 2)


@SETTINGS
@given(balanced_batches())
def test_orthographic_projection_agrees_with_numpy(case):
    base, ambient, cond = case
    v, iterations, residual = O.orthographic_projection(base, ambient)
    assume(residual <= 1e-12 * max(1.0, max(float(np.abs(b).max()) for b in base) ** 2))
    got, got_iterations, got_residual = O.orthographic_projection(t(base), t(ambient))
    assert isinstance(got_iterations, int) and isinstance(got_residual, float)
    assert all(isinstance(g, torch.Tensor) and g.shape == b.shape for g, b in zip(got, base))
    scale = max(1.0, max(float(np.abs(b).max()) for b in base) ** 2)
    assert got_residual <= 1e-12 * scale  # torch converges too
    assert within(rel(got, v), 1e-12 + 1e-14 * cond, "orthographic_projection")


def test_orthographic_depth_one_and_iteration_cap():
    w = [np.diag([2.0, 1.0])]
    v, k, res = O.orthographic_projection(t(w), t([w[0] + 1.0]))
    assert k == 0 and res == 0.0 and torch.equal(v[0], t(w[0] + 1.0))
    base = list(balanced_factors(np.diag([2.0, 1.0]), 3, rng=0))
    ambient = [b + 0.05 for b in base]
    _, k_np, res_np = O.orthographic_projection(base, ambient, max_iter=1)
    _, k_t, res_t = O.orthographic_projection(t(base), t(ambient), max_iter=1)
    assert k_np == k_t == 1 and res_t > 1e-12 and abs(res_t - res_np) <= 1e-12


# --- float32 -----------------------------------------------------------------------------


def f32(a):
    if isinstance(a, (list, tuple)):
        return [f32(x) for x in a]
    return torch.from_numpy(np.ascontiguousarray(a)).float()


def test_float32_stays_float32_within_tolerance():
    rng = np.random.default_rng(0)
    x = (orthogonal(rng, 3) * np.array([2.0, 1.3, 0.7])) @ orthogonal(rng, 3).T
    egrad = rng.standard_normal((3, 3))
    for depth in (2, 3, 5):
        got = E.boltzmann_entropy(f32(x), depth)
        assert got.dtype == torch.float32 and rel(got, E.boltzmann_entropy(x, depth)) <= 1e-5
        for fn, args in [
            (E.entropy_gradient, (depth,)),
            (F.coordinate_laplacian, (depth,)),
            (F.laplacian_of_phi, (depth,)),
        ]:
            got = fn(f32(x), *args)
            assert got.dtype == torch.float32 and rel(got, fn(x, *args)) <= 1e-4, fn.__name__
        got = F.langevin_drift(f32(x), f32(egrad), depth, 2.0, "free_energy")
        expected = F.langevin_drift(x, egrad, depth, 2.0, "free_energy")
        assert got.dtype == torch.float32 and rel(got, expected) <= 1e-4
        got = F.free_energy_gradient(f32(x), f32(egrad), depth, 2.0)
        assert rel(got, F.free_energy_gradient(x, egrad, depth, 2.0)) <= 1e-4
    weights = [np.eye(3) + 0.3 * rng.standard_normal((3, 3)) for _ in range(3)]
    xi = [rng.standard_normal((3, 3)) for _ in range(3)]
    got = I.invariant_tangent_projection(f32(weights), f32(xi))
    assert got[0].dtype == torch.float32
    assert rel(got, I.invariant_tangent_projection(weights, xi)) <= 1e-4
    got = I.invariant_hessian(f32(weights), f32(xi), f32(xi), f32(xi))
    assert rel(got, I.invariant_hessian(weights, xi, xi, xi)) <= 1e-4
    step = [0.01 * a for a in xi]
    got = I.invariant_retraction(f32(weights), f32(step))  # stops at the float32 floor
    assert got[0].dtype == torch.float32
    assert rel(got, I.invariant_retraction(weights, step)) <= 1e-4
    base = list(balanced_factors(np.diag([2.0, 1.0, 0.5]), 4, rng=0))
    ambient = [b + 1e-3 * rng.standard_normal(b.shape) for b in base]
    v, _, res = O.orthographic_projection(f32(base), f32(ambient))
    assert v[0].dtype == torch.float32 and res <= 1e-5
    assert rel(v, O.orthographic_projection(base, ambient)[0]) <= 1e-4


# --- bad input ---------------------------------------------------------------------------


def test_mixed_backends_are_a_type_error_naming_the_argument():
    rng = np.random.default_rng(1)
    x, g = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    w = [rng.standard_normal((3, 3)) for _ in range(3)]
    tw = t(w)
    cases = [
        (lambda: F.langevin_drift(t(x), g, 3, 1.0), "egrad"),
        (lambda: F.langevin_drift(x, t(g), 3, 1.0), "egrad"),
        (lambda: F.free_energy_gradient(t(x), g, 3, 1.0), "egrad"),
        (
            lambda: F.free_energy(x, 3, lambda a: torch.tensor(1.0, dtype=torch.float64), 1.0),
            "energy",
        ),
        (lambda: I.invariant_tangent_projection(tw, w), "xi[0]"),
        (lambda: I.invariant_normal_multipliers(w, tw), "vector[0]"),
        (lambda: I.invariant_hessian(tw, tw, w, tw), "ehess[0]"),
        (lambda: I.invariant_retraction(tw, [tw[0], w[1], tw[2]]), "xi[1]"),
        (lambda: I.normal_solve(tw, tw[:2], w), "other[0]"),
        (lambda: O.orthographic_projection(tw, [tw[0], tw[1], w[2]]), "ambient[2]"),
    ]
    for call, name in cases:
        with pytest.raises(TypeError, match=re.escape(name)):
            call()


def test_bad_dtypes_and_devices_are_type_errors():
    w = [torch.eye(3, dtype=torch.float64) for _ in range(3)]
    meta = [torch.eye(3, dtype=torch.float64, device="meta")] + w[1:]
    with pytest.raises(TypeError, match="device"):
        I.invariant_tangent_projection(meta, w)
    with pytest.raises(TypeError, match="device"):
        O.orthographic_projection(w, meta)
    for dtype in (torch.int64, torch.float16, torch.complex128):
        bad = torch.eye(3).to(dtype)
        with pytest.raises(TypeError, match="W"):
            E.boltzmann_entropy(bad, 2)
        with pytest.raises(TypeError, match="W"):
            F.laplacian_of_phi(bad, 2)
        with pytest.raises(TypeError, match=r"xi\[1\]"):
            I.invariant_tangent_projection(w, [w[0], bad, w[2]])


def test_no_numpy_round_trip_on_tensors():
    """Every function runs on tensors with the numpy conversions patched to raise."""
    rng = np.random.default_rng(2)
    x = t((orthogonal(rng, 3) * np.array([2.0, 1.0, 0.5])) @ orthogonal(rng, 3).T)
    g = t(rng.standard_normal((3, 3)))
    w = t([np.eye(3) + 0.3 * rng.standard_normal((3, 3)) for _ in range(3)])
    xi = t([rng.standard_normal((3, 3)) for _ in range(3)])
    base = t(balanced_factors(np.diag([2.0, 1.0]), 3, rng=0))
    ambient = [b + 0.01 for b in base]

    # (the volume constants call scipy.special on Python ints: numpy constructors allowed)
    with forbid_array_conversions(numpy_constructors=False):
        E.boltzmann_entropy(x, 3, (3, 4, 3, 3))
        E.entropy_gradient(x, 3, (3, 4, 3, 3))
        F.coordinate_laplacian(x, 3)
        F.laplacian_of_phi(x, 3)
        F.langevin_drift(x, g, 3, 2.0, "free_energy")
        F.free_energy_gradient(x, g, 3, 2.0)
        F.free_energy(x, 3, lambda a: (a**2).sum(), 2.0)
        I.invariant_tangent_projection(w, xi)
        I.invariant_hessian(w, xi, xi, xi)
        I.invariant_retraction(w, [0.01 * a for a in xi])
        I.normal_solve(w, invariants(xi), xi)
        O.orthographic_projection(base, ambient)


# --- CUDA (skips without a GPU) ------------------------------------------------------------


@pytest.mark.cuda
def test_cuda_agrees_with_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(4)
    x = (orthogonal(rng, 4) * np.array([3.0, 2.0, 1.0, 0.5])) @ orthogonal(rng, 4).T
    g = rng.standard_normal((4, 4))
    cuda = lambda a: [b.cuda() for b in t(a)] if isinstance(a, list) else t(a).cuda()  # noqa: E731
    got = E.entropy_gradient(cuda(x), 3)
    assert got.is_cuda and rel(got, E.entropy_gradient(x, 3)) <= 1e-12
    assert rel(E.boltzmann_entropy(cuda(x), 3), E.boltzmann_entropy(x, 3)) <= 1e-12
    got = F.langevin_drift(cuda(x), cuda(g), 3, 2.0, "free_energy")
    assert got.is_cuda and rel(got, F.langevin_drift(x, g, 3, 2.0, "free_energy")) <= 1e-12
    w = [np.eye(4) + 0.3 * rng.standard_normal((4, 4)) for _ in range(3)]
    xi = [rng.standard_normal((4, 4)) for _ in range(3)]
    got = I.invariant_tangent_projection(cuda(w), cuda(xi))
    assert got[0].is_cuda and rel(got, I.invariant_tangent_projection(w, xi)) <= 1e-12
    got = I.invariant_retraction(cuda(w), cuda([0.01 * a for a in xi]))
    assert rel(got, I.invariant_retraction(w, [0.01 * a for a in xi])) <= 1e-12
    base = list(balanced_factors(np.diag([2.0, 1.0]), 3, rng=0))
    ambient = [b + 0.01 for b in base]
    v, _, _ = O.orthographic_projection(cuda(base), cuda(ambient))
    assert v[0].is_cuda and rel(v, O.orthographic_projection(base, ambient)[0]) <= 1e-12
    with pytest.raises(TypeError, match="egrad"):
        F.langevin_drift(cuda(x), t(g), 3, 2.0)

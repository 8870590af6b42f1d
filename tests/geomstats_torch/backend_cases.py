"""The same adapter calls on the same inputs, for comparing Geomstats' two backends.

``evaluate()`` builds float64 inputs from seeded numpy generators (identical in every
process), hands them to the adapters as points of the active Geomstats backend
(``gs.array``: numpy arrays, or CPU torch tensors on GEOMSTATS_BACKEND=pytorch) and returns
{case name: (result as a numpy array, cond)}, cond = sigma_max/sigma_min of the end-to-end
matrix (the adversarial-spectrum tolerance scales with it). Run as a script under
GEOMSTATS_BACKEND=numpy it saves the numpy results to the .npz file named on the command
line; ``test_torch_agrees_with_numpy.py`` compares them with the torch ones.

Spectra: generic, repeated (sigma_i all equal), graded (sigma_min = 1e-12 sigma_max).
Widths: square (3, 3, 3, 3), (2, 2, 2) and non-square (3, 5, 4, 2), (4, 3, 3, 2), (2, 3, 3).
"""

from __future__ import annotations

import sys

import geomstats.backend as gs
import numpy as np
from geomstats.geometry.full_rank_matrices import FullRankMatrices
from geomstats.geometry.general_linear import GeneralLinear
from scipy.stats import ortho_group

from dlnmanifolds.core.balanced import balanced_factors, haar_stiefel
from dlnmanifolds.geomstats import BalancedSpace, DLNMetric

WIDTHS = ((3, 3, 3, 3), (2, 2, 2), (3, 5, 4, 2), (4, 3, 3, 2), (2, 3, 3))
SPECTRA = {
    "generic": lambda r, rng: np.exp(0.4 * rng.standard_normal(r)),
    "repeated": lambda r, rng: np.full(r, 0.7),
    "graded": lambda r, rng: np.logspace(0, -12, r),
}
#: Geodesic calls (numpy solvers behind the one boundary): a generic square case only.
GEODESIC_CASE = ((2, 2, 2), "generic")


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def inputs(widths, spectrum, seed=0):
    """(layers W (2 batch entries), ambient xi, base vector zeta, rotations q), numpy."""
    rng = np.random.default_rng(seed)
    m, n, depth = widths[-1], widths[0], len(widths) - 1
    r = min(m, n)
    points = []
    for _ in range(2):
        x = (haar_stiefel(m, r, rng) * SPECTRA[spectrum](r, rng)) @ haar_stiefel(n, r, rng).T
        points.append(balanced_factors(x, depth, widths=widths, rng=rng))
    xi = [rng.standard_normal((2, a, b)) for a, b in zip(widths[1:], widths[:-1])]
    zeta = rng.standard_normal((2, m, n))
    q = [ortho_group.rvs(d, random_state=rng) if d > 1 else np.eye(1) for d in widths[1:-1]]
    layers = [np.stack([p[k] for p in points]) for k in range(depth)]
    return layers, xi, zeta, q


def evaluate() -> dict[str, tuple[np.ndarray, float]]:
    out = {}
    for widths in WIDTHS:
        for spectrum in SPECTRA:
            name = f"{widths}-{spectrum}"
            layers, xi_layers, zeta_np, q_np = inputs(widths, spectrum)
            space = BalancedSpace(widths=widths, rng=0)
            space.equip_with_quotient()
            bundle = space.fiber_bundle
            w = space.packing.pack([gs.array(a) for a in layers])
            xi = space.packing.pack([gs.array(a) for a in xi_layers])
            zeta = gs.array(zeta_np)
            q = space.blocks.pack([gs.array(a) for a in q_np], like=w)
            x = bundle.riemannian_submersion(w)
            s = np.linalg.svd(_to_numpy(x), compute_uv=False)
            cond = float(np.max(s[..., 0] / s[..., -1]))
            if widths[0] == widths[-1]:
                matrices = GeneralLinear(widths[0], equip=False)
            else:
                matrices = FullRankMatrices(widths[-1], widths[0], equip=False)
            metric = matrices.equip_with_metric(DLNMetric, depth=space.depth).metric
            for key, value in _calls(space, metric, w, xi, zeta, q, (widths, spectrum)).items():
                out[f"{name}-{key}"] = (_to_numpy(value), cond)
    return out


def _calls(space, metric, w, xi, zeta, q, case):
    bundle = space.fiber_bundle
    x = bundle.riemannian_submersion(w)
    t = space.to_tangent(xi, w)
    out = {
        "submersion": space.submersion(w),
        "tangent_submersion": space.tangent_submersion(xi, w),
        "to_tangent": t,
        "projection": space.projection(w + 1e-2 * t),
        "belongs": space.belongs(w, atol=1e-8) * 1.0,
        "frobenius_inner": space.metric.inner_product(t, xi, w),
        "action": space.group_action(q, w),
        "phi": x,
        "dphi": bundle.tangent_riemannian_submersion(xi, w),
        "lift": bundle.lift(x),
        "lift_phi": bundle.riemannian_submersion(bundle.lift(x)),
        "horizontal_lift": bundle.horizontal_lift(zeta, fiber_point=w),
        "horizontal_projection": bundle.horizontal_projection(t, w),
        "vertical_projection": bundle.vertical_projection(t, w),
        "dln_inner": metric.inner_product(zeta, bundle.tangent_riemannian_submersion(t, w), x),
        "dln_coproduct": metric.inner_coproduct(zeta, zeta, x),
        "dln_metric_matrix": metric.metric_matrix(x),
        "dln_cometric_matrix": metric.cometric_matrix(x),
        "quotient_inner": space.quotient.metric.inner_product(zeta, zeta, x),
    }
    if case[1] == "repeated":
        # sigma_1 = ... = sigma_r: the singular vectors, hence the canonical lift, are a
        # free choice of the LAPACK within the fiber; its image phi(lift) is compared.
        del out["lift"]
    if case == GEODESIC_CASE:
        v = 0.2 * zeta
        y = metric.exp(v, x)
        w1 = space.metric.exp(0.1 * t, w)
        out["dln_exp"] = y
        out["dln_log"] = metric.log(y, x)
        out["balanced_exp"] = w1
        out["balanced_log"] = space.metric.log(w1, w)
        out["align"] = bundle.align(space.group_action(q, w), w)
    return out


if __name__ == "__main__":
    results = evaluate()
    np.savez(
        sys.argv[1],
        **{k: v for k, (v, _) in results.items()},
        **{f"{k}__cond": np.array(c) for k, (_, c) in results.items()},
    )

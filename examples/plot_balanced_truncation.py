"""
Balancing a deep linear network is balanced truncation of a linear system
=========================================================================

A stable system x' = A x + B u, y = C x has Gramians P (A P + P Aᵀ + B Bᵀ = 0) and
Q (Aᵀ Q + Q A + Cᵀ C = 0). Factor P = R Rᵀ and Q = Lᵀ L and read (W_1, W_2) = (R, L)
as a two-layer network. A change of state coordinates x ↦ T x acts as
(W_1, W_2) ↦ (T W_1, W_2 T⁻¹): the GL action on the fiber of X = L R (math.md §5), and

    G_1 = W_2ᵀ W_2 − W_1 W_1ᵀ = T⁻ᵀ Q T⁻¹ − T P Tᵀ.

So a balanced network (G_1 = 0) is a realization with equal Gramians, and the
singular values of the end-to-end map X = L R are the Hankel singular values
(Lindsey & Menon 2025, "model reduction"; Moore 1981). The L² balancing flow of
:func:`dlnmanifolds.flows.balancing_flow` drives G_1 to 0 like e^{−2t} (math.md §7.2)
along the fiber; an orthogonal rotation of the inner layer then diagonalizes both
Gramians, and truncating the balanced realization to k states is balanced truncation.

The script checks the result against Gramians and Hankel singular values computed
independently with ``scipy.linalg.solve_continuous_lyapunov``, and plots the
frequency-response error of the truncations against the classical bound
2 Σ_{i>k} σ_i.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from _figures import example_parser, parse_example_args, pyplot, save

from dlnmanifolds import end_to_end, invariants
from dlnmanifolds.flows import balancing_flow


def random_stable_system(n: int, inputs: int, outputs: int, rng: np.random.Generator):
    """A random stable (A, B, C): A = -(S S^T + 0.1 I) + K with K skew (eigenvalues in Re < 0)."""
    s = rng.standard_normal((n, n)) / np.sqrt(n)
    k = rng.standard_normal((n, n))
    a = -(s @ s.T + 0.1 * np.eye(n)) + 0.5 * (k - k.T)
    return a, rng.standard_normal((n, inputs)), rng.standard_normal((outputs, n))


def gramians(a, b, c):
    """Controllability P and observability Q Gramians (scipy, the independent reference)."""
    p = scipy.linalg.solve_continuous_lyapunov(a, -b @ b.T)
    q = scipy.linalg.solve_continuous_lyapunov(a.T, -c.T @ c)
    return 0.5 * (p + p.T), 0.5 * (q + q.T)


def hankel_singular_values(a, b, c) -> np.ndarray:
    """sqrt(eig(P Q)), decreasing: the scipy baseline."""
    p, q = gramians(a, b, c)
    return np.sort(np.sqrt(np.abs(np.linalg.eigvals(p @ q).real)))[::-1]


def balance_by_flow(a, b, c, t_final: float):
    """The balanced realization (T A T^-1, T B, C T^-1) and Sigma from the L^2 flow."""
    p, q = gramians(a, b, c)
    r = np.linalg.cholesky(p)  # P = R R^T: W_1 = R
    l_factor = np.linalg.cholesky(q).T  # Q = L^T L: W_2 = L
    times = np.linspace(0.0, t_final, 41)
    result = balancing_flow([r, l_factor], "l2", t_final, t_eval=times, rtol=1e-12, atol=1e-14)
    w1 = result.final_state[0]
    g = w1 @ np.linalg.inv(r)  # W_1(t) = g W_1(0): the flow moves along the GL orbit
    # Balanced up to an orthogonal gauge: rotate the inner layer to diagonalize W_1 W_1^T.
    vals, vecs = np.linalg.eigh(w1 @ w1.T)
    order = np.argsort(vals)[::-1]
    t = vecs[:, order].T @ g
    t_inv = np.linalg.inv(t)
    return (t @ a @ t_inv, t @ b, c @ t_inv), vals[order], result, (r, l_factor)


def frequency_error(system, reduced, omegas) -> np.ndarray:
    """max over omega of the spectral norm of G(i w) - G_k(i w), per omega."""
    out = []
    for w in omegas:
        full = system[2] @ np.linalg.solve(1j * w * np.eye(len(system[0])) - system[0], system[1])
        red = reduced[2] @ np.linalg.solve(
            1j * w * np.eye(len(reduced[0])) - reduced[0], reduced[1]
        )
        out.append(np.linalg.norm(full - red, 2))
    return np.array(out)


def main(argv: list[str] | None = None) -> dict:
    parser = example_parser(__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--states", type=int, default=8)
    args = parse_example_args(parser, argv)
    rng = np.random.default_rng(args.seed)
    a, b, c = random_stable_system(args.states, 2, 2, rng)
    hsv = hankel_singular_values(a, b, c)
    t_final = 12.0 if args.fast else 20.0
    balanced, sigma, result, start = balance_by_flow(a, b, c, t_final)
    p_b, q_b = gramians(*balanced)
    scale = hsv[0]
    report = {
        "hsv_scipy": hsv,
        "hsv_network": np.linalg.svd(end_to_end(list(start)), compute_uv=False),
        "hsv_flow": sigma,
        "gramian_gap": float(np.max(np.abs(p_b - q_b)) / scale),
        "gramian_offdiag": float(np.max(np.abs(p_b - np.diag(np.diag(p_b)))) / scale),
        "invariant_final": float(np.max(np.abs(invariants(list(result.final_state))[0]))),
    }
    # W_1 W_1^T = T P T^T = Sigma (the Gramian) at the balanced point, and sigma(X) = HSV.
    print("Hankel singular values, scipy:   ", np.array2string(hsv, precision=6))
    print("singular values of X = L R:      ", np.array2string(report["hsv_network"], precision=6))
    print("balanced Gramian from the flow:  ", np.array2string(sigma, precision=6))
    print(
        f"|P_b - Q_b| / sigma_1 = {report['gramian_gap']:.2e}, off-diagonal "
        f"{report['gramian_offdiag']:.2e}, final max|G_1| = {report['invariant_final']:.2e}"
    )

    omegas = np.logspace(-2, 2, 60 if args.fast else 300)
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[0].semilogy(result.t, result.invariants_norm, label=r"$\|G_1(t)\|$ (L$^2$ flow)")
    axes[0].semilogy(
        result.t,
        result.invariants_norm[0] * np.exp(-2 * result.t),
        "k:",
        label=r"$e^{-2t}\|G_1(0)\|$ (math.md §7.2)",
    )
    axes[0].set(xlabel="t", title="balancing: Gramians become equal")
    axes[0].legend(fontsize=8)
    k = np.arange(1, len(hsv) + 1)
    axes[1].semilogy(k, hsv, "o", label="scipy: sqrt eig(PQ)")
    axes[1].semilogy(k, report["hsv_network"], "x", label="singular values of L R")
    axes[1].semilogy(k, np.diag(p_b), "+", ms=12, label="balanced Gramian diag")
    axes[1].set(xlabel="i", title="Hankel singular values")
    axes[1].legend(fontsize=8)
    report["truncation"] = {}
    for order in (2, 4, 6):
        if order >= len(hsv):
            continue
        reduced = (balanced[0][:order, :order], balanced[1][:order], balanced[2][:, :order])
        err = frequency_error(balanced, reduced, omegas)
        bound = 2 * np.sum(hsv[order:])
        reduced_hsv = hankel_singular_values(*reduced)
        report["truncation"][order] = {
            "max_error": float(np.max(err)),
            "bound": float(bound),
            "hsv_kept_gap": float(np.max(np.abs(reduced_hsv - hsv[:order])) / scale),
        }
        line = axes[2].loglog(omegas, err, label=f"k = {order}")[0]
        axes[2].axhline(bound, color=line.get_color(), ls=":")
        gap = report["truncation"][order]["hsv_kept_gap"]
        print(
            f"k = {order}: max_w |G - G_k| = {np.max(err):.3e} <= 2 sum_(i>k) sigma_i = "
            f"{bound:.3e}; truncated HSV = first k to {gap:.1e}"
        )
    axes[2].set(xlabel=r"$\omega$", title=r"$\|G(i\omega) - G_k(i\omega)\|_2$ and bounds")
    axes[2].legend(fontsize=8)
    save(fig, args.output, "balanced_truncation.png")
    return report


if __name__ == "__main__":
    main()

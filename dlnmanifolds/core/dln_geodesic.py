"""Geodesics of (GL(d), g^N) and of the balanced manifold M: closed forms, exp by ODE, log by
shooting, all with up-front checks and hard caps.

Two independent geodesic equations (square case, full rank; math.md §2.4, §4.2):

* **Downstairs, Hamiltonian form (used for g^N).** With momentum P = A_{N,X}^{-1}(Xdot), the
  g^N geodesics are the flow of H(X, P) = 1/2 <P, A_{N,X}(P)>. We integrate it on a balanced
  lift W of X, where <P, A P> = ||Dphi_W^*(P)||^2:

      Wdot = Dphi_W^*(P),    Pdot = -A_{N,phi(W)}^{-1}( Dphi_W[ D_{Wdot}(Dphi^*)(P) ] ).

  The P equation is -grad_X of 1/2<P, A_X P>: the Euclidean gradient of
  F(W) = 1/2||Dphi_W^* P||^2 is D_xi(Dphi^*)(P) with xi = Dphi_W^* P, its tangent part on M is
  Dphi^*(grad f) (F = f∘phi on M) and Dphi kills the normal space N_W M. W moves along the
  horizontal geodesic of M (Wdot = Dphi^* P is horizontal), and G(W) is conserved exactly by
  the continuous flow because DG∘Dphi^* = 0 (math.md §2.1). This is ours, built from the
  submersion theorem (Menon-Yu; Menon 2024 Thm 10; math.md §4.2). One field evaluation shares
  the prefix/suffix products of W and their directional derivatives, and gets A^{-1} from two
  symmetric eigendecompositions of W_N W_N^T and W_1^T W_1 (O(N d^3), batched).
* **Upstairs, Weingarten form (used for the induced metric of M).** A curve in
  M = {G = 0} is a geodesic iff Wddot is normal: Wddot = C_W(S) with
  C_W^* C_W(S) = G(Wdot), the invariants of the velocity (differentiate G(W(t)) = 0 twice and use
  DG = -2 C_W^*, math.md §2.4). We solve it as Wddot = P_N(eta) for any eta with
  C_W^*(eta) = G(Wdot): eta_N = 0, eta_q = (G_q + W_{q+1}^T eta_{q+1}) W_q^{-T}.

Both are integrated with scipy's DOP853 (explicit Runge-Kutta of order 8, adaptive) at relative
tolerance ``rtol`` (default 1e-12); batches are integrated as one system (one time grid).
Inside shooting only (every result is checked by a final DOP853 shot at ``rtol``): the loose
stages use a field with one eigendecomposition instead of two, repeated shots of the same
pairs reuse a uniform step read off the first one (DOP853's error control stays on), and for
d^2 >= 16 the d^2 + 1 probes of the Newton Jacobian are integrated by two fixed RK4 steps.
Horizontal geodesics of M project to g^N geodesics, so the two forms check each other.

**Closed forms** (used by ``dln_log``/``dln_exp`` before any integration):

* N = 1: g^1 is the Frobenius metric, geodesics are segments (while they avoid det = 0).
* Shared singular vectors, X = U Sigma_x V^T, Y = U Sigma_y V^T (equivalently: the same polar
  factor O and commuting polar parts): the singular values move along the 1-d metric,
  Log_X(Y) = U diag(N Lambda_x^{N-1}(Lambda_y - Lambda_x)) V^T, Lambda = Sigma^{1/N}
  (math.md §4.5, inverse of its Exp formula).
* N = 2, same polar factor O (X = O P_x, Y = O P_y, P SPD): X -> X^T is an isometry of g^N
  (A_{X^T}(Z^T) = A_X(Z)^T), so its fixed set Sym(d) (and its image under O) is totally
  geodesic, and on SPD the metric tr(Z A^{-1} Z) with A(Z) = PZ + ZP is twice the
  Bures-Wasserstein metric. Hence Log_X(Y) = O((P_x P_y)^{1/2} + (P_y P_x)^{1/2} - 2 P_x)
  (Bures-Wasserstein log; Bhatia, Jain & Lim 2019, "On the Bures-Wasserstein distance
  between positive definite matrices"; verified here against the integrator).

**Scaling.** A_{cX} = c^{2(N-1)/N} A_X, so g_{cX}(cZ, cZ) = c^{2/N} g_X(Z, Z): X -> cX is a
homothety and Exp_{cX}(cV) = c Exp_X(V). Every computation is done on X / sigma_max(X) (so
1e-200 and 1e200 scales behave like 1), and the same holds upstairs (W -> cW).

**Logs** are computed by Newton shooting in momentum coordinates P (V = A_X P): a third-order
initial guess from inverting the second-order lifted retraction phi(W + (A^{-1}V)^h)
(algebraic, no integration), Newton steps with forward-difference Jacobians integrated at a
loose tolerance in the same batch as the base shot (for d^2 >= 16 a single Jacobian, by RK4
probes, and its step), then chord steps with Broyden updates (cheap ones first for d^2 >= 16,
down to a relative residual CHORD_STOP, then at ``rtol``); if direct
shooting fails, continuation along the path O(s) P(s) in GL+ (polar factors interpolated by
the matrix exponential, SPD parts linearly). Every solver stops after
``max_iter`` Newton iterations or ``max_time`` seconds with a ``GeodesicError`` that carries
the best residual reached (``.residual``, relative to max(1, max|Y|)).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence

import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import expm, logm

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import as_matrix, check_depth
from dlnmanifolds.core.balanced import _balanced_frames
from dlnmanifolds.core.balanced_tangent import tangent_projection
from dlnmanifolds.core.kernel import _dln_kernel, dln_kernel_sum
from dlnmanifolds.core.network import (
    _dphi,
    _dphi_adjoint,
    _end_to_end,
    _invariants,
)
from dlnmanifolds.core.operator import RANK_RTOL

#: Default relative tolerance of the DOP853 geodesic integrator.
GEODESIC_RTOL = 1e-12
#: Relative tolerance of the cheap integrations used for the Newton Jacobians of shooting.
LOOSE_RTOL = 1e-5
#: Integrator tolerance of the cheap Broyden steps that follow a single Jacobian (d^2 >= 16).
CHORD_RTOL = 1e-7
#: The cheap chord steps continue to this relative residual (DOP853 at CHORD_RTOL is in
#: practice far more accurate than asked on these smooth flows), so that the accurate chord
#: needs about two shots; a cheap step that stalls above it but below LOOSE_STOP hands over.
CHORD_STOP = 1e-10
#: A direct balanced shot from the frame-rotating path's velocity gives up after
#: NEWTON_PATIENCE Newton iterations that did not bring its residual below PROGRESS times its
#: value NEWTON_PATIENCE iterations earlier; the second one (from the projected chord) after
#: 2 NEWTON_PATIENCE, as it may need a long damped phase (continuation is the slower fallback).
NEWTON_PATIENCE = 3
PROGRESS = 0.5
#: Fixed RK4 steps of the batched finite-difference Jacobian of shooting for d^2 >= 16.
JACOBIAN_STEPS = 2
#: Integrations at rtol >= this use one eigendecomposition per field evaluation (not two).
ONE_FRAME_RTOL = 1e-7
#: A loose Newton iteration that stalls at this relative residual is accepted (handed to chord).
STALL_ACCEPT = 1e-3
#: Relative residual at which shooting switches from loose Newton to accurate chord steps.
LOOSE_STOP = 1e-6
#: The same for d^2 >= 16 unknowns, where one Jacobian (d^2 probes) costs more than the
#: Broyden-updated chord steps that replace further Newton iterations: one Newton Jacobian
#: (at the retraction guess), then chord steps only.
BIG_STOP = np.inf
#: Give up an integration after this many field evaluations (about 400 steps).
MAX_FIELD_EVALUATIONS = 5000
#: Stop when the end-to-end matrix gets this close (relative) to singular: the g^N geodesics
#: reach the singular set in finite time (distance ~ integral of sigma^{1/N - 1}, finite).
SINGULAR_RTOL = 1e-8
#: Default wall-time cap (seconds) of every log / exp call.
DEFAULT_MAX_TIME = 5.0
#: Default cap on Newton iterations of one shooting solve.
DEFAULT_MAX_ITER = 30
#: A stacked network counts as balanced when max|G_p| <= BALANCE_RTOL * max(1, max|W|)^2.
BALANCE_RTOL = 1e-8
#: Relative tolerance of the closed-form tests (same polar factor, commuting polar parts).
CLOSED_FORM_RTOL = 1e-12


class GeodesicError(ValueError):
    """A geodesic could not be integrated or shot (e.g. it reaches a singular matrix).

    ``residual`` is the best relative end-point residual max|Exp(V) - Y| / max(1, max|Y|)
    reached before giving up (``nan`` when no shot succeeded, ``inf`` for exp).

    Example
    -------
    A tangent vector long enough to drive the geodesic through a singular matrix:

    >>> import numpy as np
    >>> from dlnmanifolds import GeodesicError, dln_exp
    >>> try:
    ...     dln_exp(np.eye(2), np.array([[-3.0, 1.0], [0.0, -3.0]]), depth=2)
    ... except GeodesicError as error:
    ...     print(isinstance(error, ValueError), error.residual)
    True inf
    """

    def __init__(self, message: str, residual: float = float("nan")):
        super().__init__(message)
        self.residual = float(residual)


class _TimeUp(GeodesicError):
    """The wall-time cap was reached (never caught by the solvers' own fallbacks)."""


class _Budget:
    """Wall-clock and iteration caps shared by one public call."""

    def __init__(self, max_time: float, what: str):
        if isinstance(max_time, bool) or not isinstance(max_time, (int, float)):
            raise TypeError(f"max_time must be a positive number of seconds, got {max_time!r}")
        if not (np.isfinite(max_time) and max_time > 0):
            raise ValueError(f"max_time must be a positive number of seconds, got {max_time!r}")
        self.max_time = float(max_time)
        self.what = what
        self.start = time.perf_counter()
        self.best = float("nan")

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def check(self) -> None:
        if self.elapsed() > self.max_time:
            raise _TimeUp(
                f"{self.what} stopped at max_time = {self.max_time:g} s; best relative "
                f"residual {self.best:.3g}",
                self.best,
            )


def _check_max_iter(max_iter) -> int:
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    return int(max_iter)


def _layers(stack: np.ndarray) -> list[np.ndarray]:
    """View a stacked network (..., N, d, d) as the list of its layers."""
    return [stack[..., p, :, :] for p in range(stack.shape[-3])]


def _integrate(
    field: Callable[..., tuple[np.ndarray, ...]],
    state: Sequence[np.ndarray],
    rtol: float,
    budget: _Budget | None = None,
    step: float | None = None,
    record: list | None = None,
) -> list[np.ndarray]:
    """Integrate ydot = field(*y) from t = 0 to 1 with DOP853; y is a tuple of arrays.

    ``step``: first and largest step (DOP853's error control still rejects and shrinks
    steps, so the accuracy is unchanged); ``record``: a list that receives the accepted
    step sizes.
    """
    shapes = [s.shape for s in state]
    sizes = np.cumsum([s.size for s in state])[:-1]
    ends = np.cumsum([s.size for s in state])
    # Python slices (not numpy integers): this runs once per field evaluation.
    parts_of = [
        (slice(int(a), int(b)), shape)
        for (a, b), shape in zip(zip(np.concatenate([[0], ends[:-1]]), ends), shapes)
    ]

    calls = [0]

    def rhs(_t, y):
        # An adaptive integrator creeping towards a singularity never fails by itself.
        calls[0] += 1
        if calls[0] > MAX_FIELD_EVALUATIONS:
            raise GeodesicError(
                f"the geodesic ODE needed more than {MAX_FIELD_EVALUATIONS} field "
                "evaluations; it probably approaches a singular matrix (shorten the vector)",
                float("inf"),
            )
        if budget is not None and calls[0] % 8 == 0:
            budget.check()
        return np.concatenate(
            [d.reshape(-1) for d in field(*[y[s].reshape(t) for s, t in parts_of])]
        )

    y0 = np.concatenate([np.ravel(s) for s in state])
    hints = {} if step is None else {"first_step": step, "max_step": step * (1.0 + 1e-9)}
    with np.errstate(all="ignore"):
        sol = solve_ivp(rhs, (0.0, 1.0), y0, method="DOP853", rtol=rtol, atol=1e-2 * rtol, **hints)
    if sol.status != 0 or not np.all(np.isfinite(sol.y[:, -1])):
        raise GeodesicError(
            "the geodesic ODE could not be integrated to t = 1 (it probably reaches a "
            f"singular matrix; shorten the tangent vector): {sol.message}",
            float("inf"),
        )
    if record is not None:
        record.extend(np.diff(sol.t))
    return [p.reshape(shape) for p, shape in zip(np.split(sol.y[:, -1], sizes), shapes)]


def _step_hint(accepted: Sequence[float]) -> float | None:
    """A uniform step 1/n for repeated integrations of nearly the same trajectory (shooting).

    DOP853 starts with a small step from its initial-step heuristic; the later accepted steps
    (the last one truncated to reach t = 1, so no larger than allowed) show what the tolerance
    allows. n = ceil(1 / (0.95 h)), h the largest of them: equal steps that the error control
    (still active) accepts.
    """
    later = list(accepted[1:])
    if not later:
        return None
    return 1.0 / int(np.ceil(1.0 / (0.95 * max(later))))


def _integrate_fixed(
    field: Callable[..., tuple[np.ndarray, ...]],
    state: Sequence[np.ndarray],
    steps: int,
    budget: _Budget | None = None,
) -> list[np.ndarray]:
    """Integrate ydot = field(*y) from t = 0 to 1 by ``steps`` classical RK4 steps (4 field
    evaluations each, no error control, no flattening of the state).

    Only for the finite-difference Jacobians of shooting: the probes of one Jacobian share
    the base trajectory's step sequence, so the difference quotients are those of one smooth
    discrete map, whose Jacobian is within O(h^4) of the exact one (about 1e-3 relative for
    2 steps, 1e-4 for 3 at g-distances <= 1). Every end point it produces is checked again
    by an accurate DOP853 shot before it is returned.
    """
    h = 1.0 / steps
    y = list(state)
    with np.errstate(all="ignore"):
        for _ in range(steps):
            if budget is not None:
                budget.check()
            k1 = field(*y)
            k2 = field(*[a + (0.5 * h) * k for a, k in zip(y, k1)])
            k3 = field(*[a + (0.5 * h) * k for a, k in zip(y, k2)])
            k4 = field(*[a + h * k for a, k in zip(y, k3)])
            y = [
                a + (h / 6.0) * (b1 + 2.0 * (b2 + b3) + b4)
                for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4)
            ]
    if not all(np.all(np.isfinite(a)) for a in y):
        raise GeodesicError(
            "the geodesic ODE (fixed-step RK4) produced non-finite values; it probably "
            "reaches a singular matrix",
            float("inf"),
        )
    return y


# --------------------------------------------------------------------------------------
# Frames, lifts and the operator A_{N,X} (batched, square, full rank)
# --------------------------------------------------------------------------------------


def _kernel(s: np.ndarray, depth: int) -> np.ndarray:
    """K_ij = kappa(sigma_i, sigma_j) for singular values s (..., d) (math.md §3.2).

    For small depth the geometric sum of N positive terms (exact, no cancellation) is cheaper
    than the expm1 form; both are core.kernel's.
    """
    if depth <= 8:
        return dln_kernel_sum(s[..., :, None], s[..., None, :], depth)
    return _dln_kernel(s[..., :, None], s[..., None, :], depth)


def _apply_operator(u, k, vt, z, power: float) -> np.ndarray:
    """A_X^power(Z) = U (K^power ∘ U^T Z V) V^T for X = U diag(s) V^T (math.md §3.2)."""
    ut = np.swapaxes(u, -1, -2)
    return u @ ((k**power) * (ut @ z @ np.swapaxes(vt, -1, -2))) @ vt


def _lift_from_svd(u, s, vt, depth: int) -> np.ndarray:
    """Stacked canonical balanced lifts (..., N, d, d) from X = U diag(s) V^T (math.md §2.2):
    W_1 = Lambda V^T, W_p = Lambda (1 < p < N), W_N = U Lambda, Lambda = diag(s^{1/N})."""
    lam = s ** (1.0 / depth)
    d = s.shape[-1]
    if depth == 1:
        return ((u * s[..., None, :]) @ vt)[..., None, :, :]
    diag = lam[..., :, None] * np.eye(d)
    layers = [lam[..., :, None] * vt] + [diag] * (depth - 2) + [u * lam[..., None, :]]
    return np.stack(layers, axis=-3)


def canonical_lift_stacked(x: np.ndarray, depth: int) -> np.ndarray:
    """Stacked canonical balanced lifts (..., N, d, d) of square invertible x (..., d, d):
    W_1 = Lambda V^T, W_p = Lambda, W_N = U Lambda (``balanced_factors``' canonical gauge,
    math.md §2.2), computed with one batched SVD (numpy; ``canonical_lift_layers`` is the
    array-generic form for any widths)."""
    u, s, vt = np.linalg.svd(x)
    return _lift_from_svd(u, s, vt, depth)


def canonical_lift_layers(x, widths: Sequence[int]) -> list:
    """Canonical balanced lifts (W_1, ..., W_N) of full-rank x (..., m, n) with widths
    (d_0 = n, ..., d_N = m), every d_p >= r = min(m, n); batched, numpy or torch.

    With the thin SVD x = U_r diag(s) V_r^T, Lambda = diag(s^{1/N}) and the coordinate
    frames E_p = I_{d_p}[:, :r]: W_1 = E_1 Lambda V_r^T, W_p = E_p Lambda E_{p-1}^T,
    W_N = U_r Lambda E_{N-1}^T (``balanced_factors``' canonical gauge, math.md §2.2): the
    r x r, r x n and m x r blocks are those of ``canonical_lift_stacked``, zero-padded.
    Sign gauge: the largest entry of each right singular vector is made positive (u and v
    columns flipped together), so for distinct singular values the lift does not depend on
    the LAPACK's sign choice (numpy and torch give the same lift). Internal: x validated,
    full rank.
    """
    depth = len(widths) - 1
    xp = _backend.namespace(x)
    if depth == 1:
        return [x]
    u, s, vt = xp.linalg.svd(x, full_matrices=False)
    peak = xp.take_along_axis(vt, xp.argmax(xp.abs(vt), axis=-1)[..., None], axis=-1)
    signs = xp.where(peak < 0, -xp.ones_like(peak), xp.ones_like(peak))
    vt, u = vt * signs, u * signs.swapaxes(-1, -2)
    r = s.shape[-1]
    batch = tuple(x.shape[:-2])
    lam = s ** (1.0 / depth)
    blocks = [lam[..., :, None] * vt]
    blocks += [lam[..., :, None] * _backend.eye_batch(s[..., None], r)] * (depth - 2)
    blocks.append(u * lam[..., None, :])
    layers = []
    for p, block in enumerate(blocks, start=1):
        rows, cols = widths[p], widths[p - 1]
        if tuple(block.shape[-2:]) == (rows, cols):
            layers.append(block)
            continue
        layer = _backend.zeros(x, batch + (rows, cols))
        layer[..., : block.shape[-2], : block.shape[-1]] = block
        layers.append(layer)
    return layers


# --------------------------------------------------------------------------------------
# g^N geodesics (downstairs), integrated on a horizontal lift
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _identity(d: int) -> np.ndarray:
    eye = np.eye(d)
    eye.setflags(write=False)
    return eye


def _horizontal_geodesic_field(
    w: np.ndarray, p: np.ndarray, one_frame: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(Wdot, Pdot) of the g^N geodesic flow lifted to M (module docstring); batched.

    With before_q = W_{<q} (W_{q-1}...W_1) and after_q = W_{>q} (W_N...W_{q+1}), stacked over
    q: xi_q = after_q^T P before_q^T (= Dphi^*(P)), eta = D_xi(Dphi^*)(P) with
    eta_q = (D after_q)^T P before_q^T + after_q^T P (D before_q)^T, where the directional
    derivatives follow D before_{q+1} = xi_q before_q + W_q D before_q and
    D after_{q-1} = D after_q W_q + after_q xi_q, and grad = Dphi(eta) = sum_q after_q eta_q
    before_q. A^{-1} uses the balance of W (conserved exactly by Wdot = Dphi^*(P), since
    DG∘Dphi^* = 0): X X^T = (W_N W_N^T)^N and X^T X = (W_1^T W_1)^N, so two symmetric
    eigendecompositions give A_X(Z) = U (K ∘ U^T Z V) V^T with K_ij = sum_p mu_i^{N-p}
    nu_j^{p-1} (math.md §3.2), no SVD. One evaluation is O(N d^3).

    ``one_frame=True`` (used by the loose integrations of shooting only) replaces the second
    eigendecomposition by V = X^T U Sigma^{-1}, Sigma = diag(mu)^{N/2}, nu = mu (exact on M,
    where X = U Sigma V^T; its error grows like eps sigma_max/sigma_min, far below a loose
    tolerance): the batched eigh of the probe batch was half the cost of an evaluation.
    """
    depth = w.shape[-3]
    if depth == 1:
        return p[..., None, :, :], np.zeros_like(p)
    # Small batched matrices: the cost is numpy call overhead, so arrays are filled in place,
    # transposes are views (ndarray.swapaxes) and per-layer products are batched over q.
    d = w.shape[-1]
    layer = [w[..., q, :, :] for q in range(depth)]
    before_s = np.empty_like(w)  # before_s[q] = W_{<q+1} (W_q ... W_1), before_s[0] = I
    after_s = np.empty_like(w)  # after_s[q] = W_{>q+1} (W_N ... W_{q+2}), after_s[N-1] = I
    before = [before_s[..., q, :, :] for q in range(depth)]
    after = [after_s[..., q, :, :] for q in range(depth)]
    before[0][...] = _identity(d)
    after[depth - 1][...] = _identity(d)
    before[1][...] = layer[0]
    for q in range(2, depth):
        np.matmul(layer[q - 1], before[q - 1], out=before[q])
    after[depth - 2][...] = layer[depth - 1]
    for q in range(depth - 3, -1, -1):
        np.matmul(after[q + 1], layer[q + 1], out=after[q])
    pb = p[..., None, :, :]
    after_t = after_s.swapaxes(-1, -2)
    before_t = before_s.swapaxes(-1, -2)
    # Shared halves: xi = (A^T P) B^T and eta = dA^T (P B^T) + (A^T P) dB^T.
    after_p = after_t @ pb
    p_before = pb @ before_t
    xi = after_p @ before_t
    # D before_{q+1} = xi_q before_q + W_q D before_q, D after_{q-1} = after_q xi_q +
    # D after_q W_q: the first terms for every q in one batched product each.
    xi_before = xi @ before_s
    after_xi = after_s @ xi
    d_before_s = np.empty_like(w)  # D before_s along xi
    d_after_s = np.empty_like(w)  # D after_s along xi
    d_before = [d_before_s[..., q, :, :] for q in range(depth)]
    d_after = [d_after_s[..., q, :, :] for q in range(depth)]
    d_before[0][...] = 0.0
    d_after[depth - 1][...] = 0.0
    d_before[1][...] = xi_before[..., 0, :, :]
    for q in range(1, depth - 1):
        np.matmul(layer[q], d_before[q], out=d_before[q + 1])
        d_before[q + 1] += xi_before[..., q, :, :]
    d_after[depth - 2][...] = after_xi[..., depth - 1, :, :]
    for q in range(depth - 2, 0, -1):
        np.matmul(d_after[q], layer[q], out=d_after[q - 1])
        d_after[q - 1] += after_xi[..., q, :, :]
    eta = d_after_s.swapaxes(-1, -2) @ p_before
    eta += after_p @ d_before_s.swapaxes(-1, -2)
    grad = (after_s @ eta @ before_s).sum(axis=-3)
    first, last = layer[0], layer[depth - 1]
    if one_frame:
        mu, u = np.linalg.eigh(last @ last.swapaxes(-1, -2))
        nu = mu
    else:
        grams = np.empty((2,) + first.shape)
        np.matmul(last, last.swapaxes(-1, -2), out=grams[0])
        np.matmul(first.swapaxes(-1, -2), first, out=grams[1])
        eig, vecs = np.linalg.eigh(grams)
        mu, nu, u, v = eig[0], eig[1], vecs[0], vecs[1]
    if (mu[..., 0] <= SINGULAR_RTOL ** (2.0 / depth) * mu[..., -1]).any():
        raise GeodesicError(
            "the geodesic reaches a (numerically) singular matrix before t = 1; "
            "shorten the tangent vector",
            float("inf"),
        )
    if one_frame:
        x = last @ before[depth - 1]
        v = (x.swapaxes(-1, -2) @ u) / mu[..., None, :] ** (0.5 * depth)
    # K_ij = sum_k mu_i^(N-1-k) nu_j^k = mu_i^(N-1) (1 + r + ... + r^(N-1)), r = nu_j / mu_i,
    # by Horner (positive terms, no cancellation).
    ratio = nu[..., None, :] / mu[..., :, None]
    kernel = ratio + 1.0
    for _ in range(depth - 2):
        kernel *= ratio
        kernel += 1.0
    kernel *= mu[..., :, None] ** (depth - 1)
    pdot = u @ ((u.swapaxes(-1, -2) @ grad @ v) / kernel) @ v.swapaxes(-1, -2)
    np.negative(pdot, out=pdot)
    return xi, pdot


def _exp_momentum(
    w0: np.ndarray,
    p0: np.ndarray,
    rtol: float,
    budget=None,
    steps: int | None = None,
    step: float | None = None,
    record: list | None = None,
) -> np.ndarray:
    """phi(W(1)) of the lifted Hamiltonian flow from (w0, p0); batched, unvalidated.

    DOP853 at ``rtol``, or ``steps`` fixed RK4 steps when given (``_integrate_fixed``).
    Loose integrations (rtol >= ONE_FRAME_RTOL or fixed steps: shooting's Newton and chord
    stages, always followed by accurate shots) use the one-eigendecomposition field."""
    field = _horizontal_geodesic_field
    if steps is not None or rtol >= ONE_FRAME_RTOL:
        field = functools.partial(_horizontal_geodesic_field, one_frame=True)
    if steps is not None:
        w1, _ = _integrate_fixed(field, (w0, p0), steps, budget)
    else:
        w1, _ = _integrate(field, (w0, p0), rtol, budget, step, record)
    return _end_to_end(_layers(w1))


def horizontal_geodesic_end(
    w0: np.ndarray,
    v: np.ndarray,
    rtol: float = GEODESIC_RTOL,
    max_time: float = DEFAULT_MAX_TIME,
):
    """End point W(1) of the horizontal geodesic of M from w0 (..., N, d, d) over Exp_X(v).

    Dphi of its initial velocity is v (the velocity is the horizontal lift v^h), so
    phi(W(1)) = Exp_X(v) with X = phi(w0) (math.md §4.2). Internal: w0 balanced with
    invertible end-to-end matrix, v of shape (..., d, d) with the same batch shape.
    """
    depth = w0.shape[-3]
    u, s, vt = np.linalg.svd(_end_to_end(_layers(w0)))
    p0 = _apply_operator(u, _kernel(s, depth), vt, v, -1.0)
    budget = _Budget(max_time, "the horizontal geodesic")
    w1, _ = _integrate(_horizontal_geodesic_field, (w0, p0), rtol, budget)
    return w1


def _require_invertible(x: np.ndarray, name: str) -> None:
    s = np.linalg.svd(x, compute_uv=False)
    ratio = s[..., -1] / np.where(s[..., 0] > 0, s[..., 0], 1.0)
    if np.any(ratio <= RANK_RTOL) or np.any(s[..., 0] == 0):
        raise ValueError(
            f"{name} must be invertible (full rank); its smallest singular value is "
            f"{np.min(ratio):.3g} times its largest (need > {RANK_RTOL:g})"
        )


def _check_square_pair(a, b, name_a, name_b):
    a = as_matrix(a, name_a, batch=True)
    b = as_matrix(b, name_b, batch=True)
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name_a} must be square (..., d, d), got shape {a.shape}")
    if b.shape[-2:] != a.shape[-2:]:
        raise ValueError(
            f"{name_b} must have matrix shape {a.shape[-2:]} like {name_a}, got {b.shape}"
        )
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    if batch_a and batch_b and batch_a != batch_b:
        raise ValueError(
            f"{name_a} and {name_b} have batch shapes {batch_a} and {batch_b}; they must be "
            "equal, or one of them must be a single matrix"
        )
    batch = batch_a or batch_b
    return (np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:]))


def _require_same_component(y: np.ndarray, x: np.ndarray, name_y: str, name_x: str) -> None:
    """g^N geodesics stay in one component of GL(d): reject det(X) det(Y) < 0 up front."""
    sign_x = np.linalg.slogdet(x)[0]
    sign_y = np.linalg.slogdet(y)[0]
    bad = sign_x * sign_y < 0
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(np.atleast_1d(bad))[0]) if bad.ndim else ()
        raise ValueError(
            f"{name_y} and {name_x} have determinants of opposite sign"
            + (f" (batch entry {index})" if index else "")
            + ": no curve in GL(d) joins them without passing through a singular matrix, so "
            "there is no g^N geodesic (the two components GL+ and GL- are disjoint)"
        )


# --------------------------------------------------------------------------------------
# Closed forms (module docstring)
# --------------------------------------------------------------------------------------


def _sym_function(p: np.ndarray, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    e, q = np.linalg.eigh(p)
    return (q * f(e)[..., None, :]) @ np.swapaxes(q, -1, -2)


def _closed_form_log(y: np.ndarray, x: np.ndarray, depth: int) -> np.ndarray | None:
    """Log_X(Y) in closed form for one pair if one applies (module docstring), else None.

    x, y: (d, d), normalised so that sigma_max(x) = 1, same determinant sign.
    """
    if depth == 1:
        # Segment (1-t)X + tY is singular iff X^{-1}Y has a real eigenvalue <= 0.
        mu = np.linalg.eigvals(np.linalg.solve(x, y))
        real = np.abs(mu.imag) <= 1e-12 * np.maximum(1.0, np.abs(mu))
        if np.any(real & (mu.real <= 0)):
            return None
        return y - x
    u, s, vt = np.linalg.svd(x)
    o = u @ vt
    px = (vt.T * s) @ vt
    py = o.T @ y
    scale = max(1.0, float(np.max(np.abs(y))))
    if np.max(np.abs(py - py.T)) > CLOSED_FORM_RTOL * scale:
        return None
    py = 0.5 * (py + py.T)
    ey = np.linalg.eigvalsh(py)
    if ey[0] <= 0:
        return None
    # Commuting polar parts: one orthonormal basis q diagonalises both (shared singular
    # vectors U = O q, V = q); a generic combination separates the joint eigenspaces.
    _, q = np.linalg.eigh(px + (np.sqrt(2.0) - 0.3) * py)
    dx, dy = q.T @ px @ q, q.T @ py @ q
    off = max(np.max(np.abs(dx - np.diag(np.diag(dx)))), np.max(np.abs(dy - np.diag(np.diag(dy)))))
    if off <= CLOSED_FORM_RTOL * scale:
        lam_x = np.diag(dx) ** (1.0 / depth)
        lam_y = np.diag(dy) ** (1.0 / depth)
        delta = depth * lam_x ** (depth - 1) * (lam_y - lam_x)
        return o @ (q * delta) @ q.T
    if depth == 2:
        # Bures-Wasserstein: Log = O((P_x P_y)^{1/2} + (P_y P_x)^{1/2} - 2 P_x).
        root = _sym_function(px, np.sqrt)
        inv_root = _sym_function(px, lambda e: 1.0 / np.sqrt(e))
        mid = _sym_function(0.5 * (root @ py @ root + (root @ py @ root).T), np.sqrt)
        r = root @ mid @ inv_root
        return o @ (r + r.T - 2.0 * px)
    return None


# --------------------------------------------------------------------------------------
# Shooting
# --------------------------------------------------------------------------------------


def _lift_basis(w0: np.ndarray, d: int) -> np.ndarray:
    """Dphi_{W0}^*(E_ij) for the row-major basis E_ij: shape (B, d^2, N, d, d)."""
    basis = np.eye(d * d).reshape(1, d * d, d, d)
    layers = [w0[:, None, q] for q in range(w0.shape[1])]
    return np.stack(_dphi_adjoint(layers, basis), axis=-3)


def _retraction_guess(w0, lifted_basis, target, p0, budget):
    """Momenta p with phi(W0 + Dphi^*(p)) = Y (second-order retraction, no ODE), by Newton.

    Exp_X(A p) - phi(W0 + Dphi^* p) = O(|p|^3) (core.dln_metric.lifted_retraction), so the
    root is a third-order guess for shooting. Returns p0 where Newton does not converge.
    """
    b, k = target.shape
    p = p0.copy()
    ok = np.zeros(b, dtype=bool)
    with np.errstate(all="ignore"):
        for _ in range(8):
            budget.check()
            w = w0 + np.einsum("bk,bkqij->bqij", p, lifted_basis)
            r = _end_to_end(_layers(w)).reshape(b, k) - target
            err = np.max(np.abs(r), axis=1)
            ok = np.isfinite(err) & (err <= 1e-12 * np.maximum(1.0, np.max(np.abs(target), 1)))
            if np.all(ok | ~np.isfinite(err)):
                break
            layers = [w[:, None, q] for q in range(w.shape[1])]
            cols = _dphi(layers, _layers(lifted_basis)).reshape(b, k, k)
            jac = np.swapaxes(cols, 1, 2)
            try:
                p = p - np.linalg.solve(jac, r[..., None])[..., 0]
            except np.linalg.LinAlgError:
                break
        w = w0 + np.einsum("bk,bkqij->bqij", p, lifted_basis)
        r = _end_to_end(_layers(w)).reshape(b, k) - target
        err = np.max(np.abs(r), axis=1)
    good = np.isfinite(err) & (err <= 1e-8 * np.maximum(1.0, np.max(np.abs(target), 1)))
    good &= np.all(np.isfinite(p), axis=1)
    return np.where(good[:, None], p, p0)


class _Pairs:
    """Fixed data of a batch of log problems (normalised, sigma_max(X) = 1)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, depth: int, rel_tol: float):
        self.depth = depth
        self.b, self.d = x.shape[0], x.shape[-1]
        self.k = self.d * self.d
        self.u, self.s, self.vt = np.linalg.svd(x)
        self.kernel = _kernel(self.s, depth)
        self.w0 = _lift_from_svd(self.u, self.s, self.vt, depth)
        self.target = y.reshape(self.b, self.k)
        self.rel_tol = rel_tol
        # Absolute end-point tolerance of each pair: rel_tol * max(1, max|Y|).
        self.tol = rel_tol * np.maximum(1.0, np.max(np.abs(self.target), axis=1))
        # Step hints (``_step_hint``) of repeated shots of the same pairs at the same rtol.
        self.hints: dict = {}

    def velocity(self, p: np.ndarray, idx) -> np.ndarray:
        """V = A_X(P) for momenta p (len(idx), k)."""
        z = p.reshape(-1, self.d, self.d)
        return _apply_operator(self.u[idx], self.kernel[idx], self.vt[idx], z, 1.0)

    def momentum(self, v: np.ndarray) -> np.ndarray:
        """P = A_X^{-1}(V) for every pair; v (b, d, d) -> (b, k)."""
        return _apply_operator(self.u, self.kernel, self.vt, v, -1.0).reshape(self.b, self.k)

    def momentum_of(self, i: int, v: np.ndarray) -> np.ndarray:
        """P = A_X^{-1}(V) for pair i; v (1, k) -> (1, k)."""
        z = v.reshape(1, self.d, self.d)
        sl = slice(i, i + 1)
        out = _apply_operator(self.u[sl], self.kernel[sl], self.vt[sl], z, -1.0)
        return out.reshape(1, self.k)

    def shots(
        self, idx: np.ndarray, coords: np.ndarray, rtol: float, budget, steps: int | None = None
    ) -> np.ndarray:
        """End points (len(idx), m, k) of momenta coords (len(idx), m, k), NaN where a shot
        fails; one integration for the whole batch, pair by pair only after a failure.
        ``steps``: fixed RK4 steps instead of DOP853 at ``rtol`` (Jacobian probes only)."""
        a, m, k = coords.shape
        w = np.repeat(self.w0[idx], m, axis=0)
        key = (rtol, m, np.asarray(idx).tobytes())
        record: list = []
        try:
            ends = _exp_momentum(
                w,
                coords.reshape(a * m, self.d, self.d),
                rtol,
                budget,
                steps,
                None if steps is not None else self.hints.get(key),
                record,
            )
            if steps is None and key not in self.hints:
                self.hints[key] = _step_hint(record)
            return ends.reshape(a, m, k)
        except _TimeUp:
            raise
        except GeodesicError:
            if a == 1:
                return np.full((1, m, k), np.nan)
        return np.concatenate(
            [self.shots(idx[i : i + 1], coords[i : i + 1], rtol, budget, steps) for i in range(a)]
        )


def _solve(jac: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Newton step: solve for square Jacobians, least squares otherwise (or if singular)."""
    if jac.shape[0] == jac.shape[1]:
        try:
            return np.linalg.solve(jac, rhs)
        except np.linalg.LinAlgError:
            pass
    return np.linalg.lstsq(jac, rhs, rcond=None)[0]


def _newton(
    pairs,
    idx,
    p,
    targets,
    stop,
    max_iter,
    rtol,
    budget,
    steps=None,
    patience=None,
    final_step=False,
):
    """Newton on Exp(A p) = target with forward-difference Jacobians (batched probes).

    Each iteration shoots every active pair and its k probes in one integration at ``rtol``.
    A step that does not reduce the residual is halved from the best point; a failed shot
    (singular matrix on the way) is halved the same way, or the guess itself is halved when
    no shot succeeded yet. A pair also counts as done when a step stalls at a relative
    residual <= STALL_ACCEPT: the loose integrator's own error floor (long geodesics), which
    the accurate chord steps then remove. With ``patience`` = m, a pair whose best residual
    did not drop below PROGRESS times its value m iterations earlier is given up (not ok): a
    direct shot that stagnates is left to continuation early. ``final_step``: a pair that
    meets ``stop`` still takes its Newton step (returned p is the stepped one; used with the
    fixed-step RK4 probes, whose base residual is good to ~1e-4). Returns (p, jac, err, ok).
    """
    accept = STALL_ACCEPT / pairs.rel_tol
    n, k = p.shape
    eye = np.eye(k)
    best_err = np.full(n, np.inf)
    best_p, step = p.copy(), np.zeros_like(p)
    jac = np.zeros((n, pairs.target.shape[1], k))
    have_jac = np.zeros(n, dtype=bool)
    ok = np.zeros(n, dtype=bool)
    gave_up = np.zeros(n, dtype=bool)
    history = []  # best residual after each iteration
    for iteration in range(max_iter):
        if patience is not None and iteration > patience:
            gave_up |= ~ok & ~(best_err <= PROGRESS * history[iteration - 1 - patience])
        act = np.flatnonzero(~ok & ~gave_up)
        if act.size == 0:
            break
        budget.check()
        h = 1e-6 * np.maximum(1.0, np.max(np.abs(p[act]), axis=1))
        probes = np.concatenate([p[act, None, :], p[act, None, :] + h[:, None, None] * eye], axis=1)
        ends = pairs.shots(idx[act], probes, rtol, budget, steps)
        residual = ends[:, 0] - targets[act]
        err = np.max(np.abs(residual), axis=1) / pairs.tol[idx[act]]
        for j, i in enumerate(act):
            e = err[j]
            if np.isfinite(e) and e < best_err[i]:
                best_err[i], best_p[i] = e, p[i]
                jac[i] = (ends[j, 1:] - ends[j, :1]).T / h[j]
                have_jac[i] = True
                if e <= stop and not final_step:
                    ok[i] = True
                    continue
                step[i] = _solve(jac[i], -residual[j])
                if e <= stop:
                    ok[i], p[i] = True, p[i] + step[i]
                    continue
                p[i] = p[i] + step[i]
            elif np.isfinite(best_err[i]):
                if best_err[i] <= accept and rtol >= LOOSE_RTOL:
                    ok[i], p[i] = True, best_p[i]
                    continue
                step[i] = 0.5 * step[i]
                p[i] = best_p[i] + step[i]
            else:
                p[i] = 0.5 * p[i]
        history.append(best_err.copy())
        finite = best_err[np.isfinite(best_err)]
        budget.best = float(np.max(finite)) * pairs.rel_tol if finite.size else float("nan")
    # Converged pairs were not stepped (p = best_p); the others continue from their next guess.
    return p, jac, best_err, ok & have_jac


def _chord(pairs, idx, p, jac, max_iter, rtol, budget, stop=1.0, stall=0.0):
    """Chord steps p -= J^{-1} r at ``rtol`` until err <= stop (units of tol), with Broyden's
    rank-one update J += (dr - J dp) dp^T / |dp|^2 after every step; the Jacobian is
    recomputed by probes only when a step makes no progress (err > 0.9 prev), unless err is
    already <= ``stall`` (then the pair is done: the integrator's own floor at ``rtol``)."""
    n, k = p.shape
    prev = np.full(n, np.inf)
    ok = np.zeros(n, dtype=bool)
    err = np.full(n, np.inf)
    last = [None] * n
    for _ in range(max_iter):
        act = np.flatnonzero(~ok)
        if act.size == 0:
            break
        budget.check()
        ends = pairs.shots(idx[act], p[act, None, :], rtol, budget)[:, 0]
        residual = ends - pairs.target[idx[act]]
        e = np.max(np.abs(residual), axis=1) / pairs.tol[idx[act]]
        err[act] = e
        ok[act] = e <= stop
        if np.any(~np.isfinite(e)):
            break
        budget.best = float(np.max(e)) * pairs.rel_tol
        slow = act[(~ok[act]) & (e > 0.9 * prev[act])]
        floor = slow[err[slow] <= stall]
        ok[floor] = True
        slow = slow[err[slow] > stall]
        if slow.size:
            p[slow], jac[slow], _, _ = _newton(
                pairs, idx[slow], p[slow].copy(), pairs.target[idx[slow]], 0.0, 1, rtol, budget
            )
            prev[slow] = np.inf
            for i in slow:
                last[i] = None
            continue
        for j, i in enumerate(act):
            if ok[i]:
                continue
            if last[i] is not None:
                dp, dr = p[i] - last[i][0], residual[j] - last[i][1]
                if dp @ dp > 0:
                    jac[i] += np.outer(dr - jac[i] @ dp, dp) / (dp @ dp)
            last[i] = (p[i].copy(), residual[j].copy())
            p[i] = p[i] - _solve(jac[i], residual[j])
        prev[act] = e
    return p, err, ok


def _continuation_path(x: np.ndarray, y: np.ndarray) -> Callable[[float], np.ndarray]:
    """s -> O(s) P(s) in GL+: polar factors joined by expm(s logm(O_x^T O_y)), SPD parts
    linearly; a curve of invertible matrices from x (s = 0) to y (s = 1)."""
    ux, sx, vxt = np.linalg.svd(x)
    uy, sy, vyt = np.linalg.svd(y)
    ox, oy = ux @ vxt, uy @ vyt
    px, py = (vxt.T * sx) @ vxt, (vyt.T * sy) @ vyt
    gen = logm(ox.T @ oy)
    gen = np.real(gen) if np.max(np.abs(np.imag(gen))) < 1e-8 else None
    gen = None if gen is None else 0.5 * (gen - gen.T)

    def path(s: float) -> np.ndarray:
        rot = ox if gen is None else ox @ expm(s * gen)
        out = rot @ ((1.0 - s) * px + s * py)
        if gen is None:
            out = (1.0 - s) * x + s * y
        return out

    return path


def _continuation(pairs, i, max_iter, budget):
    """Newton along the targets path(s), s = 1/m, 2/m, ..., 1, halving the step on failure."""
    idx = np.array([i])
    x = _end_to_end(_layers(pairs.w0[i]))
    path = _continuation_path(x, pairs.target[i].reshape(pairs.d, pairs.d))
    s, ds = 0.0, 0.25
    current = np.zeros((1, pairs.k))
    while s < 1.0:
        budget.check()
        if ds < 1.0 / 256:
            return None
        s_new = min(1.0, s + ds)
        target = path(s_new).reshape(1, pairs.k)
        guess = current * (s_new / s) if s > 0 else pairs.momentum_of(i, target - x.reshape(1, -1))
        got, _, _, ok = _newton(
            pairs,
            idx,
            guess.copy(),
            target,
            LOOSE_STOP / pairs.rel_tol,
            max_iter,
            LOOSE_RTOL,
            budget,
        )
        if ok[0]:
            s, current, ds = s_new, got, min(2 * ds, 0.5)
        else:
            ds *= 0.5
    return current[0]


def _log_normalised(x, y, depth, tol, max_iter, rtol, budget) -> np.ndarray:
    """Log_x(y) for batches (B, d, d) with sigma_max(x) = 1 and matching determinant signs."""
    b, d, _ = x.shape
    out = np.empty_like(x)
    todo = []
    for i in range(b):
        closed = _closed_form_log(y[i], x[i], depth)
        if closed is None:
            todo.append(i)
        else:
            out[i] = closed
    if not todo:
        return out
    todo = np.array(todo)
    pairs = _Pairs(x[todo], y[todo], depth, tol)
    local = np.arange(todo.size)
    guess = pairs.momentum(y[todo] - x[todo])
    guess = _retraction_guess(pairs.w0, _lift_basis(pairs.w0, d), pairs.target, guess, budget)
    # The probes of one Newton Jacobian cost k = d^2 shots: for large d, stop the loose Newton
    # early and let Broyden-updated chord steps (one shot each) finish.
    stop = (LOOSE_STOP if pairs.k < 16 else BIG_STOP) / tol
    # That single Jacobian only has to be good to ~1e-3 (the chord steps' convergence rate is
    # limited by the distance of the guess to the root): fixed-step RK4 probes suffice, and
    # the step from their base residual (RK4 end point, good to ~1e-4) is taken too: it cuts
    # the residual of the retraction guess by ~50x, for free.
    steps = None if pairs.k < 16 else JACOBIAN_STEPS
    p, jac, _, ok = _newton(
        pairs,
        local,
        guess,
        pairs.target,
        stop,
        max_iter,
        LOOSE_RTOL,
        budget,
        steps,
        final_step=steps is not None,
    )
    for i in local[~ok]:
        start = _continuation(pairs, i, max_iter, budget)
        if start is None:
            continue
        one = np.array([i])
        p[one], jac[one], _, ok[one] = _newton(
            pairs, one, start[None, :], pairs.target[one], stop, max_iter, LOOSE_RTOL, budget, steps
        )
    done = local[ok]
    if done.size and pairs.k >= 16:
        # One Jacobian only: let cheap Broyden steps at CHORD_RTOL do most of the work first.
        jd = jac[done]  # a copy: _chord's Broyden updates are written back below
        p[done], _, good = _chord(
            pairs,
            done,
            p[done],
            jd,
            max_iter,
            CHORD_RTOL,
            budget,
            CHORD_STOP / tol,
            LOOSE_STOP / tol,
        )
        jac[done] = jd
        ok[done] = good
        done = local[ok]
    if done.size:
        jd = jac[done]
        p[done], err, good = _chord(pairs, done, p[done], jd, max_iter, rtol, budget)
        ok[done] = good
    if not np.all(ok):
        raise GeodesicError(
            f"dln_log: shooting (Newton, then continuation) did not converge for "
            f"{int(np.sum(~ok))} of {b} pairs in max_iter = {max_iter} iterations; best "
            f"relative residual {budget.best:.3g} (target {tol:g}). The points may be too "
            "far apart: (GL(d), g^N) is incomplete and a minimising geodesic need not exist",
            budget.best,
        )
    out[todo] = pairs.velocity(p, local)
    return out


def _normalisers(x: np.ndarray) -> np.ndarray:
    """c = sigma_max(x) per matrix, shape (B, 1, 1) (the homothety of the module docstring)."""
    return np.linalg.norm(x, ord=2, axis=(-2, -1))[:, None, None]


def _check_tol(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{name} must be a positive float, got {value!r}")
    if not (np.isfinite(value) and 0 < value < 1):
        raise ValueError(f"{name} must be a float in (0, 1), got {value!r}")
    return float(value)


def _dln_exp(
    x: np.ndarray,
    v: np.ndarray,
    depth: int,
    rtol: float = GEODESIC_RTOL,
    max_time: float = DEFAULT_MAX_TIME,
) -> np.ndarray:
    """Exp_x(v), validated square invertible x (..., d, d) and v of the same shape."""
    budget = _Budget(max_time, "dln_exp")
    shape = x.shape
    d = shape[-1]
    xs, vs = x.reshape(-1, d, d), v.reshape(-1, d, d)
    if depth == 1:
        # Straight segments; X + tV is singular iff X^{-1}V has a real eigenvalue <= -1.
        mu = np.linalg.eigvals(np.linalg.solve(xs, vs))
        real = np.abs(mu.imag) <= 1e-12 * np.maximum(1.0, np.abs(mu))
        if np.any(real & (mu.real <= -1.0)):
            raise GeodesicError(
                "the geodesic (a segment for depth 1) reaches a singular matrix before "
                "t = 1; shorten the tangent vector",
                float("inf"),
            )
        return (xs + vs).reshape(shape)
    c = _normalisers(xs)
    u, s, vt = np.linalg.svd(xs / c)
    p0 = _apply_operator(u, _kernel(s, depth), vt, vs / c, -1.0)
    ends = _exp_momentum(_lift_from_svd(u, s, vt, depth), p0, rtol, budget)
    return (c * ends).reshape(shape)


def dln_exp(
    X: np.ndarray,
    V: np.ndarray,
    depth: int,
    rtol: float = GEODESIC_RTOL,
    max_time: float = DEFAULT_MAX_TIME,
) -> np.ndarray:
    """Riemannian exponential Exp_X(V) of (GL(d), g^N) (math.md §4; module docstring).

    Integrates the lifted Hamiltonian geodesic flow with DOP853 at relative tolerance
    ``rtol`` (depth 1: the segment X + V). ``X``, ``V``: shape (..., d, d), X invertible;
    batch shapes must match or one of them must be unbatched. Raises ``GeodesicError`` (a
    ``ValueError``) if the geodesic reaches a singular matrix before t = 1 or the call takes
    longer than ``max_time`` seconds.

    Example
    -------
    >>> import numpy as np
    >>> x = np.diag([2.0, 1.0])
    >>> y = dln_exp(x, np.diag([0.3, -0.2]), depth=3)  # fixed singular vectors (math.md §4.5)
    >>> bool(np.allclose(y, np.diag([(2**(1/3) + 0.3 / (3 * 2**(2/3)))**3, (1 - 0.2 / 3)**3])))
    True
    """
    budget_check = _Budget(max_time, "dln_exp")  # validates max_time first
    X, V = _check_square_pair(X, V, "X", "V")
    depth = check_depth(depth)
    rtol = _check_tol(rtol, "rtol")
    _require_invertible(X, "X")
    return _dln_exp(X, V, depth, rtol, budget_check.max_time)


def dln_log(
    Y: np.ndarray,
    X: np.ndarray,
    depth: int,
    tol: float = 1e-11,
    max_iter: int = DEFAULT_MAX_ITER,
    rtol: float = GEODESIC_RTOL,
    max_time: float = DEFAULT_MAX_TIME,
) -> np.ndarray:
    """Riemannian logarithm Log_X(Y) of (GL(d), g^N): closed form or shooting on ``dln_exp``.

    Closed forms first (depth 1; shared singular vectors; depth 2 with a shared polar factor:
    module docstring), else Newton shooting from the inverse of the second-order retraction,
    with continuation if that fails. Returns V with max|Exp_X(V) - Y| <= tol * max(1, max|Y|)
    after scaling X, Y by 1/sigma_max(X) (a homothety of g^N). Shapes (..., d, d).

    Raises ``ValueError`` before any integration when X or Y is not finite, not invertible, or
    det X, det Y have opposite signs (no geodesic joins GL+ and GL-); ``GeodesicError`` (a
    ValueError, ``.residual`` = best relative residual) when shooting does not converge in
    ``max_iter`` Newton iterations or ``max_time`` seconds.

    Example
    -------
    >>> import numpy as np
    >>> x = np.diag([2.0, 1.0])
    >>> v = np.array([[0.1, 0.2], [-0.1, 0.05]])
    >>> bool(np.allclose(dln_log(dln_exp(x, v, 3), x, 3), v, atol=1e-9))
    True
    """
    budget = _Budget(max_time, "dln_log")
    max_iter = _check_max_iter(max_iter)
    tol = _check_tol(tol, "tol")
    rtol = _check_tol(rtol, "rtol")
    Y, X = _check_square_pair(Y, X, "Y", "X")
    depth = check_depth(depth)
    _require_invertible(X, "X")
    _require_invertible(Y, "Y")
    _require_same_component(Y, X, "Y", "X")
    shape = X.shape
    d = shape[-1]
    xs, ys = X.reshape(-1, d, d), Y.reshape(-1, d, d)
    c = _normalisers(xs)
    v = _log_normalised(xs / c, ys / c, depth, tol, max_iter, rtol, budget)
    return (c * v).reshape(shape)


# --------------------------------------------------------------------------------------
# Geodesics of the balanced manifold M with the induced Frobenius metric (upstairs)
# --------------------------------------------------------------------------------------


def check_balanced_stack(w: np.ndarray, name: str) -> np.ndarray:
    """Reject, before any integration, a stack (..., N, d, d) that is not a point of M.

    Checks (after scaling by c = max_p ||W_p||_2, a homothety of M): finite entries, an
    invertible end-to-end matrix, and max|G_p(W / c)| <= BALANCE_RTOL. Returns the stack.
    """
    w = as_matrix(w, name, batch=True)
    if w.ndim < 3 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"{name} must be a stack of square layers (..., N, d, d), got {w.shape}")
    c = np.max(np.linalg.norm(w, ord=2, axis=(-2, -1)), axis=-1)
    if np.any(c == 0):
        raise ValueError(f"{name} has a zero layer: its end-to-end matrix is not invertible")
    scaled = w / c[..., None, None, None]
    _require_invertible(_end_to_end(_layers(scaled)), f"the end-to-end matrix of {name}")
    if w.shape[-3] > 1:
        gap = max(float(np.max(np.abs(g))) for g in _invariants(_layers(scaled)))
        if gap > BALANCE_RTOL:
            raise ValueError(
                f"{name} is not on the balanced manifold: max|G_p| = {gap:.3g} (after scaling "
                f"the layers to unit norm), need <= {BALANCE_RTOL:g}; G_p = W_(p+1)^T W_(p+1) "
                "- W_p W_p^T (project it with BalancedSpace.projection)"
            )
    return w


@functools.lru_cache(maxsize=32)
def _sym_basis(count: int, d: int) -> np.ndarray:
    """Orthonormal basis of Sym(d)^count (Frobenius): shape (count d(d+1)/2, count, d, d)."""
    mats = []
    for i in range(d):
        for j in range(i, d):
            e = np.zeros((d, d))
            e[i, j] = e[j, i] = 1.0 if i == j else np.sqrt(0.5)
            mats.append(e)
    out = np.zeros((count * len(mats), count, d, d))
    for p in range(count):
        for a, e in enumerate(mats):
            out[p * len(mats) + a, p] = e
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=32)
def _sym_basis_padded(depth: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_sym_basis(depth - 1, d)`` and its blocks placed for C_W: left[a, q] = S_q (q < N-1,
    else 0) and right[a, q] = S_{q-1} (q > 0, else 0), shapes (m, N, d, d).

    C_W(S)_q = S_q W_q - W_q S_{q-1} (S_0 = S_N = 0) is the adjoint of
    C_W^*(xi)_p = sym(xi_p W_p^T - W_{p+1}^T xi_{p+1}) (math.md §2.4); its range is N_W M.
    """
    basis = _sym_basis(depth - 1, d)
    m = basis.shape[0]
    left = np.zeros((m, depth, d, d))
    right = np.zeros((m, depth, d, d))
    left[:, : depth - 1] = basis
    right[:, 1:] = basis
    for a in (left, right):
        a.setflags(write=False)
    return basis, left, right


def _balanced_geodesic_field(w: np.ndarray, xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Wdot, Wddot) = (xi, C_W(S)) with C_W^* C_W(S) = G(xi) (module docstring); batched.

    The Gram matrix of C_W on an orthonormal basis of Sym(d)^{N-1} is assembled and solved
    densely per network: O(N d^3 m + m^3) with m = (N-1) d(d+1)/2, fine for geodesics at the
    small sizes where shooting is affordable.
    """
    depth, d = w.shape[-3], w.shape[-1]
    if depth == 1:
        return xi, np.zeros_like(xi)
    basis, left, right = _sym_basis_padded(depth, d)
    m = basis.shape[0]
    # C_W(E_a)_q = S_q W_q - W_q S_{q-1} for every basis element at once (blocks padded and
    # shifted once, in ``_sym_basis_padded``): two matmuls.
    wb = w[..., None, :, :, :]
    images = left @ wb - wb @ right  # (..., m, N, d, d)
    flat = images.reshape(images.shape[:-4] + (m, depth * d * d))
    gram = flat @ np.swapaxes(flat, -1, -2)
    # G_p(xi) = xi_{p+1}^T xi_{p+1} - xi_p xi_p^T (core.network.invariants), all p at once.
    upper, lower = xi[..., 1:, :, :], xi[..., :-1, :, :]
    invariants = upper.swapaxes(-1, -2) @ upper - lower @ lower.swapaxes(-1, -2)
    rhs = invariants.reshape(invariants.shape[:-3] + (1, -1)) @ basis.reshape(m, -1).T
    coef = np.swapaxes(np.linalg.solve(gram, np.swapaxes(rhs, -1, -2)), -1, -2)
    return xi, (coef @ flat).reshape(xi.shape)


def balanced_exp_stacked(
    w: np.ndarray,
    xi: np.ndarray,
    rtol: float = GEODESIC_RTOL,
    max_time: float = DEFAULT_MAX_TIME,
    budget: _Budget | None = None,
) -> np.ndarray:
    """Exp^M_W(xi) for stacked balanced networks w (..., N, d, d), tangent xi (same shape).

    Geodesic of M with the induced Frobenius metric, Weingarten form (module docstring),
    DOP853, computed on W / c, xi / c with c = max_p ||W_p||_2 (a homothety of M).
    Internal: inputs are assumed validated, balanced, with invertible layers.
    """
    budget = _Budget(max_time, "the balanced exp") if budget is None else budget
    c = np.max(np.linalg.norm(w, ord=2, axis=(-2, -1)), axis=-1)[..., None, None, None]
    w1, _ = _integrate(_balanced_geodesic_field, (w / c, xi / c), rtol, budget)
    return c * w1


def tangent_basis(w: np.ndarray) -> np.ndarray:
    """Orthonormal basis (N d^2, dim M) of T_W M at one stacked balanced network w (N, d, d)."""
    layers = list(w)
    frames = _balanced_frames(layers)
    size = w.size
    columns = [
        np.ravel(np.stack(tangent_projection(frames, list(e.reshape(w.shape)))))
        for e in np.eye(size)
    ]
    u, s, _ = np.linalg.svd(np.array(columns).T, full_matrices=False)
    return u[:, s > 1e-8 * s[0]]


class _BalancedPair:
    """One balanced log problem (normalised), unknowns = coordinates in a basis of T_{W0}M."""

    def __init__(self, w0: np.ndarray, w1: np.ndarray, rel_tol: float):
        self.w0 = w0
        self.basis = tangent_basis(w0)
        self.target = np.ravel(w1)[None, :]
        self.rel_tol = rel_tol
        self.tol = rel_tol * np.maximum(1.0, np.max(np.abs(self.target), axis=1))

    def shots(self, idx, coords, rtol, budget, steps=None):
        # DOP853 only (``steps`` is part of the shared interface of ``_newton``; never given).
        m = coords.shape[1]
        xi = (coords[0] @ self.basis.T).reshape((m,) + self.w0.shape)
        base = np.broadcast_to(self.w0, xi.shape)
        try:
            ends = balanced_exp_stacked(base, xi, rtol, budget=budget)
        except _TimeUp:
            raise
        except GeodesicError:
            return np.full((1, m, self.target.shape[1]), np.nan)
        return ends.reshape(1, m, -1)


def _require_same_balanced_component(w1: np.ndarray, w0: np.ndarray) -> None:
    """M splits into components by the determinant signs of the layers (W_p in GL(d) has two
    components; the signs fix the components of the frames Q_p): reject different ones."""
    sign1 = np.linalg.slogdet(w1)[0]
    sign0 = np.linalg.slogdet(w0)[0]
    bad = np.any(sign1 * sign0 < 0, axis=-1)
    if np.any(bad):
        raise ValueError(
            "point and base_point lie in different components of the balanced manifold: "
            f"the determinant signs of their layers differ ({sign1.reshape(-1, sign1.shape[-1])[0]}"
            f" vs {sign0.reshape(-1, sign0.shape[-1])[0]} for the first pair), so no curve in M "
            "joins them and there is no geodesic"
        )


def _rotation_log(r: np.ndarray) -> np.ndarray | None:
    """Real skew generator of a rotation r (expm of it is r), or None if logm fails."""
    gen = logm(r)
    if not np.all(np.isfinite(gen)) or np.max(np.abs(np.imag(gen))) > 1e-8:
        return None
    gen = np.real(gen)
    return 0.5 * (gen - gen.T)


def _balanced_path(w0: np.ndarray, w1: np.ndarray) -> Callable[[float], np.ndarray] | None:
    """s -> W(s) in M: W_p(s) = Q_p(s) Lambda(s) Q_{p-1}(s)^T with frames Q_p(s) on rotation
    geodesics from those of w0 to those of w1 and Lambda(s) linear (two balanced points of the
    same component, square, distinct-enough singular values). None if no such path is found."""
    f0, f1 = _balanced_frames(list(w0)), _balanced_frames(list(w1))
    q0, q1 = f0.q, f1.q
    # W is unchanged by a common column sign flip D of all frames: pick D to align the frames
    # and to put every relative rotation q0_p^T q1_p D in SO(d).
    overlap = sum(np.einsum("ij,ij->j", a, b) for a, b in zip(q0, q1))
    signs = np.where(overlap >= 0, 1.0, -1.0)
    if np.linalg.det(q0[0].T @ q1[0]) * np.prod(signs) < 0:
        j = int(np.argmin(np.abs(overlap)))
        signs[j] = -signs[j]
    gens = []
    for a, b in zip(q0, q1):
        rel = a.T @ (b * signs)
        if np.linalg.det(rel) < 0:
            return None
        gen = _rotation_log(rel)
        if gen is None:
            return None
        gens.append(gen)
    lam0, lam1 = f0.lam, f1.lam

    def path(s: float) -> np.ndarray:
        frames = [a @ expm(s * g) for a, g in zip(q0, gens)]
        lam = (1.0 - s) * lam0 + s * lam1
        return np.stack([(frames[p + 1] * lam) @ frames[p].T for p in range(len(frames) - 1)])

    return path


def _balanced_log_one(a, b, tol, max_iter, rtol, budget):
    """Log^M_a(b) for one normalised pair: direct shooting, else continuation along
    ``_balanced_path``; coordinates in an orthonormal basis of T_a M."""
    one = np.array([0])
    pair = _BalancedPair(a, b, tol)
    stop = LOOSE_STOP / tol
    path = _balanced_path(a, b)
    chord = (np.ravel(b - a) @ pair.basis)[None, :]
    attempts = [(chord, NEWTON_PATIENCE)]
    if path is not None:
        # The velocity of the frame-rotating path: a first-order guess that, unlike the chord,
        # keeps the rotation angles of the fiber direction (far-apart gauges); the chord is
        # then the fallback, with twice the patience.
        h = 1e-6
        along = ((np.ravel(path(h)) - np.ravel(a)) / h @ pair.basis)[None, :]
        attempts = [(along, NEWTON_PATIENCE), (chord, 2 * NEWTON_PATIENCE)]
    for start, patience in attempts:
        p, jac, _, ok = _newton(
            pair,
            one,
            start,
            pair.target,
            stop,
            min(max_iter, 10),
            LOOSE_RTOL,
            budget,
            patience=patience,
        )
        if ok[0]:
            break
    if not ok[0]:
        if path is not None:
            s, ds, current = 0.0, 0.25, np.zeros_like(start)
            while s < 1.0 and ds >= 1.0 / 256:
                s_new = min(1.0, s + ds)
                stage = _BalancedPair(a, path(s_new), tol)
                stage.basis = pair.basis
                guess = (
                    current * (s_new / s)
                    if s > 0
                    else (np.ravel(stage.target - np.ravel(a)) @ pair.basis)[None, :]
                )
                got, jac_s, _, ok_s = _newton(
                    stage,
                    one,
                    guess.copy(),
                    stage.target,
                    (1e-4 if s_new < 1 else LOOSE_STOP) / tol,
                    min(max_iter, 8),
                    LOOSE_RTOL,
                    budget,
                )
                if ok_s[0]:
                    s, current, ds = s_new, got, min(2 * ds, 0.5)
                else:
                    ds *= 0.5
            if s >= 1.0:
                p, ok = current, np.array([True])
                jac = jac_s
    if ok[0]:
        p, _, ok = _chord(pair, one, p, jac, max_iter, rtol, budget)
    if not ok[0]:
        raise GeodesicError(
            f"the balanced log did not converge (direct shooting, then continuation, "
            f"max_iter = {max_iter}); best relative residual {budget.best:.3g} (target {tol:g}); "
            "the points may be too far apart",
            budget.best,
        )
    return (p[0] @ pair.basis.T).reshape(a.shape)


def balanced_log_stacked(
    w1: np.ndarray,
    w0: np.ndarray,
    tol: float = 1e-11,
    max_iter: int = DEFAULT_MAX_ITER,
    rtol: float = GEODESIC_RTOL,
    max_time: float = DEFAULT_MAX_TIME,
) -> np.ndarray:
    """Log^M_{w0}(w1) on the balanced manifold by Newton shooting on ``balanced_exp_stacked``.

    Unknowns are coordinates in an orthonormal basis of T_{w0}M, started at the projection of
    the chord w1 - w0; Newton with loose forward-difference Jacobians, then accurate chord
    steps (as ``dln_log``); if direct shooting fails, continuation along a path of M that
    rotates the balanced frames (``_balanced_path``). Computed on w / c with
    c = max_p ||W0_p||_2 (a homothety of M). Stacked (..., N, d, d) inputs of equal batch
    shape; both are checked first (on M, same component: ``check_balanced_stack``). Raises
    ``GeodesicError`` (with ``.residual``) after ``max_iter`` iterations or ``max_time`` s.
    """
    budget = _Budget(max_time, "the balanced log")
    max_iter = _check_max_iter(max_iter)
    tol = _check_tol(tol, "tol")
    w1 = check_balanced_stack(w1, "point")
    w0 = check_balanced_stack(w0, "base_point")
    _require_same_balanced_component(w1, w0)
    shape = w0.shape
    flat0 = w0.reshape((-1,) + shape[-3:])
    flat1 = w1.reshape(flat0.shape)
    out = []
    for a, b in zip(flat0, flat1):
        c = float(np.max(np.linalg.norm(a, ord=2, axis=(-2, -1))))
        out.append(c * _balanced_log_one(a / c, b / c, tol, max_iter, rtol, budget))
    return np.stack(out).reshape(shape)

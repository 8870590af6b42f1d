"""numpy vs torch for the array-generic core (issue 16).

One formula, two backends, timed alternately in one process (medians of paired
ratios, single-threaded BLAS for numpy and ``torch.set_num_threads(1)``):

* ``g^N gradient``: A_{N,X}(G) on a full-rank n x n X (depth 3), i.e.
  ``DLNMatrices.egrad2rgrad``: one full SVD, the kernel matrix, four products;
* ``rank-r step``: one Riemannian gradient step on (M_r, g^N), r = 10: the
  factored gradient from G V and G^T U, then the lifted retraction
  (``DLNFixedRank.egrad2rgrad`` + ``retr``), with the ambient G given dense;
* ``geoopt SGD step`` (torch only, no numpy peer): one ``RiemannianSGD`` step on
  ``DLNMatrices`` with the autograd gradient of 1/2 ||X - Y||^2, against the
  torch ``g^N gradient`` alone (the adapter's and optimizer's overhead);
* matrix completion (``--completion-sizes``, m = n, r = 10, |Omega| =
  min(5 r (m + n) ln n, m n / 2), Arora et al. ground truth), numpy
  ``MatrixCompletion`` vs torch ``MatrixCompletion.to()``:
  ``completion step``: one inner iteration of RankAdaptive's fixed-rank stage
  (residual on Omega, G V and G^T U, the factored g^N gradient, the lifted
  retraction); ``rank increase``: one call of ``normal_singular_pairs`` (k = 10;
  numpy svds, torch block Lanczos); ``rank-adaptive step``: the two together;
  ``geoopt Adam step``: one ``RiemannianAdam`` step on ``DLNFixedRank`` with the
  autograd gradient of ``CompletionTensors.loss``, against the numpy
  ``completion step``;
* ``balanced projection``: the frames of a balanced network (N = 8 layers,
  d x d, ``core.balanced._balanced_frames``: N thin SVDs) and one tangent projection
  P_T xi (``core.balanced_tangent.tangent_projection``), the cost per point of a
  step on the balanced manifold, numpy vs torch; ``projection only`` reuses the
  frames (one cached point, as inside a step); ``batched (B = 4)``: frames and
  projection of a batch of 4 networks in one call (batched SVDs and pair sweeps);
* ``geoopt balanced step`` (torch only): one ``RiemannianSGD`` step (momentum 0.5)
  on ``dlnmanifolds.geoopt.BalancedManifold`` with the autograd gradient of
  1/2 ||W_N ... W_1 - Y||^2, against the torch ``balanced projection`` alone.

Target (issue 16): torch CPU within 1.3x of numpy for n >= 256. It prints the
device it ran on; CUDA is timed too when ``torch.cuda.is_available()``.

Run: ``python benchmarks/bench_backends.py [--fast] [--sizes 256,512,1024,2048]
[--completion-sizes 1000,2048,4096]`` (``--sizes ""`` skips the dense cases, whose
full SVDs take minutes at n = 4096 on one thread).
"""

from __future__ import annotations

import argparse
import platform
import sys

import _timing
import numpy as np

try:
    import geoopt
    import torch
except ImportError:  # the torch extra is optional
    torch = None

from dlnmanifolds.core.dln_metric import riemannian_gradient
from dlnmanifolds.core.fixed_rank import _lifted_retraction, _riemannian_gradient, _weights
from dlnmanifolds.problems import MatrixCompletion
from dlnmanifolds.problems.lowrank import LowRank, normal_singular_pairs


def rank_step(u, s, v, g, depth, lr):
    weights = _weights(s, depth)
    up, mm, vp = _riemannian_gradient(u, v, weights, g @ v, g.T @ u)
    return _lifted_retraction(u, s, v, weights, depth, (-lr * up, -lr * mm, -lr * vp))


def completion_step(problem, x: LowRank, depth: int, lr: float):
    """One inner iteration on (M_r, g^N): residual on Omega, G V and G^T U (numpy
    ``MatrixCompletion`` or torch ``CompletionTensors``), the factored g^N gradient
    and the lifted retraction along -lr times it."""
    gv, gtu = problem.gradient_products(x)
    u, s, v = x.u, x.s, x.vt.T
    weights = _weights(s, depth)
    up, mm, vp = _riemannian_gradient(u, v, weights, gv, gtu)
    return _lifted_retraction(u, s, v, weights, depth, (-lr * up, -lr * mm, -lr * vp))


def rank_increase(problem, x: LowRank, k: int):
    """The rank-increase pairs of RankAdaptive at x (numpy svds or torch Lanczos)."""
    if isinstance(problem, MatrixCompletion):
        return normal_singular_pairs(problem.gradient_matrix(x), x.u, x.vt.T, k)
    return problem.normal_singular_pairs(x, k)


def completion_cases(sizes: list[int], repeats: int, devices: list[str], depth: int, rank: int):
    """The completion rows: numpy MatrixCompletion vs the same problem on torch."""
    from dlnmanifolds.geoopt import DLNFixedRank

    for n in sizes:
        count = int(min(5 * rank * (2 * n) * np.log(n), n * n / 2))
        problem = MatrixCompletion.generate(n, rank, count, rng=0)
        start = problem.spectral_factors(rank)
        rng = np.random.default_rng(1)
        # A point near, not at, the spectral start (a non-trivial normal part).
        x = LowRank(start.u, start.s * (1 + 0.1 * rng.random(rank)), start.vt)

        def fresh(x=x):
            # New array objects: MatrixCompletion caches the residual per point.
            return LowRank(x.u.copy(), x.s.copy(), x.vt.copy())

        def numpy_step(problem=problem):
            completion_step(problem, fresh(), depth, 1e-3)

        def numpy_increase(problem=problem):
            rank_increase(problem, fresh(), rank)

        def numpy_both(problem=problem):
            y = fresh()
            completion_step(problem, y, depth, 1e-3)
            rank_increase(problem, y, rank)

        for device in devices:
            data = problem.to(device=device)
            xt = LowRank(*(torch.from_numpy(a).to(device) for a in x))
            sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

            def torch_step(data=data, xt=xt, sync=sync):
                completion_step(data, xt, depth, 1e-3)
                sync()

            def torch_increase(data=data, xt=xt, sync=sync):
                rank_increase(data, xt, rank)
                sync()

            def torch_both(data=data, xt=xt, sync=sync):
                completion_step(data, xt, depth, 1e-3)
                rank_increase(data, xt, rank)
                sync()

            manifold = DLNFixedRank(n, n, rank, depth)
            packed = manifold.pack(xt.u, xt.s, xt.vt.T)
            param = geoopt.ManifoldParameter(packed.clone(), manifold=manifold)
            optimizer = geoopt.optim.RiemannianAdam([param], lr=1e-4)

            def adam_step(param=param, optimizer=optimizer, data=data, m=manifold, sync=sync):
                optimizer.zero_grad()
                u, s, v = m.factors(param)
                data.loss(LowRank(u, s, v.T)).backward()
                optimizer.step()
                sync()

            cases = [
                ("completion step", numpy_step, torch_step),
                ("rank increase", numpy_increase, torch_increase),
                ("rank-adaptive step", numpy_both, torch_both),
                ("geoopt Adam step", numpy_step, adam_step),
            ]
            for what, fn_np, fn_t in cases:
                t_t, t_np, ratio = _timing.paired_ratio(fn_t, fn_np, repeats)
                note = "  <- vs numpy completion step" if what.startswith("geoopt") else ""
                print(
                    f"{n:5d} {what:18} {device:6} {1e3 * t_np:9.2f} {1e3 * t_t:9.2f} "
                    f"{ratio:11.2f}{note}",
                    flush=True,
                )
        print(f"      (n = {n}: |Omega| = {problem.count}, {problem.count / n**2:.0%} observed)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="n = 256, 512, few repeats")
    parser.add_argument("--sizes", default="256,512,1024,2048")
    parser.add_argument("--completion-sizes", default="1000,2048,4096")
    args = parser.parse_args(argv)
    if torch is None:
        print("skipped: needs the torch extra (pip install 'dlnmanifolds[torch]')")
        return
    torch.set_num_threads(1)
    sizes = [256, 512] if args.fast else [int(x) for x in args.sizes.split(",") if x]
    completion_sizes = (
        [1000] if args.fast else [int(x) for x in args.completion_sizes.split(",") if x]
    )
    repeats = 3 if args.fast else 7
    depth, rank = 3, 10
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"device: {platform.processor() or platform.machine()} CPU, torch {torch.__version__}")
    print("cuda: " + (torch.cuda.get_device_name(0) if "cuda" in devices else "not available"))
    print(f"numpy {np.__version__}, single-threaded BLAS, depth {depth}, rank {rank}")
    print(f"{'n':>5} {'what':18} {'device':6} {'numpy ms':>9} {'torch ms':>9} {'torch/numpy':>11}")
    rng = np.random.default_rng(0)
    for n in sizes:
        x = rng.standard_normal((n, n))
        g = rng.standard_normal((n, n))
        u, _ = np.linalg.qr(rng.standard_normal((n, rank)))
        v, _ = np.linalg.qr(rng.standard_normal((n, rank)))
        s = np.linspace(2.0, 1.0, rank)
        for device in devices:
            arrays = dict(x=x, g=g, u=u, v=v, s=s)
            t = {k: torch.from_numpy(a).to(device) for k, a in arrays.items()}
            sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

            def torch_grad(t=t, sync=sync):
                riemannian_gradient(t["x"], t["g"], depth)
                sync()

            def torch_step(t=t, sync=sync):
                rank_step(t["u"], t["s"], t["v"], t["g"], depth, 1e-3)
                sync()

            def numpy_grad(x=x, g=g):
                riemannian_gradient(x, g, depth)

            def numpy_step(u=u, s=s, v=v, g=g):
                rank_step(u, s, v, g, depth, 1e-3)

            cases = [
                ("g^N gradient", numpy_grad, torch_grad),
                ("rank-r step", numpy_step, torch_step),
            ]
            for what, fn_np, fn_t in cases:
                t_t, t_np, ratio = _timing.paired_ratio(fn_t, fn_np, repeats)
                print(
                    f"{n:5d} {what:18} {device:6} {1e3 * t_np:9.2f} {1e3 * t_t:9.2f} {ratio:11.2f}"
                )
            manifold = _matrices(n, depth)
            point = geoopt.ManifoldParameter(t["x"].clone(), manifold=manifold)
            optimizer = geoopt.optim.RiemannianSGD([point], lr=1e-4)

            def sgd_step(point=point, optimizer=optimizer, target=t["g"], sync=sync):
                optimizer.zero_grad()
                (0.5 * ((point - target) ** 2).sum()).backward()
                optimizer.step()
                sync()

            t_step, t_grad, ratio = _timing.paired_ratio(sgd_step, torch_grad, repeats)
            print(
                f"{n:5d} {'geoopt SGD step':18} {device:6} {'(grad)':>9} {1e3 * t_step:9.2f} "
                f"{ratio:11.2f}  <- step / torch g^N gradient"
            )
    completion_cases(completion_sizes, repeats, devices, depth, rank)
    for device in devices:
        balanced_cases(device, [64, 128] if args.fast else [64, 128, 256], repeats)
    sys.stdout.flush()


def balanced_cases(device: str, dims: list[int], repeats: int, depth: int = 8) -> None:
    """The ``balanced projection`` and ``geoopt balanced step`` rows (module docstring)."""
    print(f"balanced manifold, depth {depth}, widths d x d, device {device}")
    print(f"{'d':>5} {'what':22} {'numpy ms':>9} {'torch ms':>9} {'torch/numpy':>11}")
    rng = np.random.default_rng(1)
    for d in dims:
        _balanced_rows(device, d, depth, repeats, rng)


def _balanced_rows(device: str, d: int, depth: int, repeats: int, rng) -> None:
    from dlnmanifolds.core.balanced import _balanced_frames, balanced_factors
    from dlnmanifolds.core.balanced_tangent import tangent_projection
    from dlnmanifolds.geoopt import BalancedManifold

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    s = np.linspace(2.0, 0.5, d)
    u, v = (np.linalg.qr(rng.standard_normal((d, d)))[0] for _ in range(2))
    w = (u * s) @ v.T
    layers = list(balanced_factors(w, depth, rng=2))
    xi = [rng.standard_normal((d, d)) for _ in range(depth)]
    t_layers = [torch.from_numpy(a).to(device) for a in layers]
    t_xi = [torch.from_numpy(a).to(device) for a in xi]
    frames_np, frames_t = _balanced_frames(layers), _balanced_frames(t_layers)

    def numpy_full():
        tangent_projection(_balanced_frames(layers), xi)

    def torch_full():
        tangent_projection(_balanced_frames(t_layers), t_xi)
        sync()

    def numpy_projection():
        tangent_projection(frames_np, xi)

    def torch_projection():
        tangent_projection(frames_t, t_xi)
        sync()

    batch = 4
    b_layers = [np.stack([w] * batch) for w in layers]
    b_xi = [np.stack([v * (k + 1) for k in range(batch)]) for v in xi]
    tb_layers = [torch.from_numpy(a).to(device) for a in b_layers]
    tb_xi = [torch.from_numpy(a).to(device) for a in b_xi]

    def numpy_batched():
        tangent_projection(_balanced_frames(b_layers, d), b_xi)

    def torch_batched():
        tangent_projection(_balanced_frames(tb_layers, d), tb_xi)
        sync()

    for what, fn_np, fn_t in [
        ("balanced projection", numpy_full, torch_full),
        ("  projection only", numpy_projection, torch_projection),
        (f"  batched (B = {batch})", numpy_batched, torch_batched),
    ]:
        t_t, t_np, ratio = _timing.paired_ratio(fn_t, fn_np, repeats)
        print(f"{d:5d} {what:22} {1e3 * t_np:9.2f} {1e3 * t_t:9.2f} {ratio:11.2f}")
    manifold = BalancedManifold((d,) * (depth + 1))
    point = geoopt.ManifoldParameter(manifold.pack(t_layers).clone(), manifold=manifold)
    optimizer = geoopt.optim.RiemannianSGD([point], lr=1e-4, momentum=0.5)
    target = torch.from_numpy(w).to(device)

    def balanced_step():
        optimizer.zero_grad()
        (0.5 * ((manifold.end_to_end(point) - target) ** 2).sum()).backward()
        optimizer.step()
        sync()

    t_step, _, ratio = _timing.paired_ratio(balanced_step, torch_full, repeats)
    print(
        f"{d:5d} {'geoopt balanced step':22} {'(proj)':>9} {1e3 * t_step:9.2f} "
        f"{ratio:11.2f}  <- step / torch balanced projection"
    )


def _matrices(n, depth):
    from dlnmanifolds.geoopt import DLNMatrices

    return DLNMatrices(n, n, depth)


if __name__ == "__main__":
    main()

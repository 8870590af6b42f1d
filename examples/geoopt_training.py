"""
Training on the DLN manifolds with Geoopt and torch.autograd
============================================================

The DLN geometry inside an ordinary PyTorch loop: the end-to-end matrix of a depth-3
network is a ``geoopt.ManifoldParameter`` on ``dlnmanifolds.geoopt.DLNMatrices`` (full
rank, metric g^N) or ``DLNFixedRank`` (rank r, factored), the loss is written in torch,
its Euclidean gradient comes from ``loss.backward()``, and ``geoopt.optim.RiemannianSGD``
/ ``RiemannianAdam`` turn it into g^N steps (egrad2rgrad = A_{N,X}, the lifted
retraction). Two problems:

1. a small regression Y = X* A, on ``DLNMatrices`` with ``RiemannianSGD``;
2. the matrix completion of Arora, Cohen, Hu & Luo (2019): a rank-5 100 x 100 matrix
   from 2000 entries, on ``DLNMatrices`` from a small start (the implicit low-rank
   bias of depth) and on ``DLNFixedRank`` (rank 5) with ``RiemannianAdam``.

Then the network itself: the parameter is the whole balanced network (W_1, W_2, W_3),
packed into one tensor, on ``dlnmanifolds.geoopt.BalancedManifold`` (induced Frobenius
metric; egrad2rgrad = the tangent projection, the polar re-balancing retraction), the
loss written on ``manifold.end_to_end(point)``:

3. the same regression with non-square inner widths (6, 10, 9, 8) and
   ``RiemannianSGD`` with momentum;
4. the completion from a small balanced start (Arora et al.'s balanced
   initialization: plain gradient descent on the layers keeps a balanced network
   balanced, so the Riemannian step is that gradient step, re-balanced to round-off).

Run: ``python examples/geoopt_training.py [--fast] [--output DIR] [--device cuda]``
(needs the ``torch`` extra; without PyTorch/Geoopt it says so and exits).
Writes ``geoopt_training.json`` into DIR.
"""

from __future__ import annotations

import json
import sys
import time

from _figures import example_parser, parse_example_args

try:
    import geoopt
    import torch

    from dlnmanifolds.geoopt import BalancedManifold, DLNFixedRank, DLNMatrices
except ImportError as exc:  # the torch extra is optional
    geoopt = torch = None
    MISSING = str(exc)

from dlnmanifolds import balanced_factors
from dlnmanifolds.problems import LowRank, MatrixCompletion


def regression(args, device) -> dict:
    gen = torch.Generator().manual_seed(args.seed)
    m, n, samples = 8, 6, 60
    truth = torch.randn(m, n, generator=gen, dtype=torch.float64)
    inputs = torch.randn(n, samples, generator=gen, dtype=torch.float64)
    truth, inputs = truth.to(device), inputs.to(device)
    targets = truth @ inputs
    manifold = DLNMatrices(m, n, depth=args.depth)
    start = truth + 0.5 * torch.randn(m, n, generator=gen, dtype=torch.float64).to(device)
    point = geoopt.ManifoldParameter(start, manifold=manifold)
    optimizer = geoopt.optim.RiemannianSGD([point], lr=0.05)
    steps = 300 if args.fast else 1000
    tic = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = 0.5 * ((point @ inputs - targets) ** 2).sum() / samples
        loss.backward()
        optimizer.step()
    return {
        "steps": steps,
        "loss": float(loss.detach()),
        "relative_error": float((point.detach() - truth).norm() / truth.norm()),
        "seconds": time.perf_counter() - tic,
    }


def arora_problem(args):
    """(size, rank, problem): Arora et al.'s rank-5 100 x 100 from 2000 entries."""
    size, rank, count = (40, 3, 600) if args.fast else (100, 5, 2000)
    return size, rank, MatrixCompletion.generate(size, rank, count, rng=args.seed)


def observed_tensors(problem, device):
    """(truth, rows, cols, values) as tensors on ``device`` (the dense truth: m x n)."""
    u, s, vt = problem.truth_factors
    return (
        torch.tensor((u * s) @ vt, device=device),
        torch.as_tensor(problem.rows, device=device),
        torch.as_tensor(problem.cols, device=device),
        torch.as_tensor(problem.values, device=device),
    )


def completion(args, device) -> dict:
    size, rank, problem = arora_problem(args)
    truth, rows, cols, values = observed_tensors(problem, device)

    def loss_of(x):
        return 0.5 * ((x[rows, cols] - values) ** 2).mean()

    def test_error(x):
        return float((x.detach() - truth).norm() / truth.norm())

    results = {}
    gen = torch.Generator().manual_seed(args.seed)
    # Full rank, small start (scale 1e-3 per entry): gradient descent under g^N
    # fits the observed entries with a low-rank matrix (Arora et al. 2019).
    full = DLNMatrices(size, size, depth=args.depth)
    start = 1e-3 * torch.randn(size, size, generator=gen, dtype=torch.float64)
    point = geoopt.ManifoldParameter(start.to(device), manifold=full)
    optimizer = geoopt.optim.RiemannianSGD([point], lr=2.0)
    steps = 600 if args.fast else 2500
    tic = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_of(point)
        loss.backward()
        optimizer.step()
    sv = torch.linalg.svdvals(point.detach())
    results["dln-matrices-sgd"] = {
        "steps": steps,
        "train_loss": float(loss.detach()),
        "test_error": test_error(point),
        "effective_rank": int((sv > 1e-3 * sv[0]).sum()),
        "seconds": time.perf_counter() - tic,
    }
    # Rank r, factored: the packed point [U; diag(s); V] and Adam. The loss is the
    # problem's own, held on the device (``problem.to``): evaluated on Omega from the
    # factors, O(|Omega| r) per step, no m x n matrix (mean over Omega, as above).
    fixed = DLNFixedRank(size, size, rank, depth=args.depth)
    data = problem.to(device=device)
    point = geoopt.ManifoldParameter(fixed.random(generator=gen).to(device), manifold=fixed)
    optimizer = geoopt.optim.RiemannianAdam([point], lr=0.3, stabilize=20)
    steps = 300 if args.fast else 1000
    tic = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        u, s, v = fixed.factors(point)
        loss = data.loss(LowRank(u, s, v.T)) / data.count
        loss.backward()
        optimizer.step()
    results["dln-fixed-rank-adam"] = {
        "steps": steps,
        "train_loss": float(loss.detach()),
        "test_error": test_error(fixed.to_matrix(point)),
        "seconds": time.perf_counter() - tic,
    }
    return results


def balanced(args, device) -> dict:
    """Problems 3 and 4 on ``BalancedManifold`` (the network as the parameter)."""
    results = {}
    gen = torch.Generator().manual_seed(args.seed)
    m, n, samples = 8, 6, 60
    truth = torch.randn(m, n, generator=gen, dtype=torch.float64).to(device)
    inputs = torch.randn(n, samples, generator=gen, dtype=torch.float64).to(device)
    targets = truth @ inputs
    widths = (n,) + (10, 9)[: args.depth - 1] + (10,) * max(args.depth - 3, 0) + (m,)
    manifold = BalancedManifold(widths)
    # The start of problem 1, factored into a balanced network by the core (on tensors,
    # Haar inner frames from the seed).
    start = truth + 0.5 * torch.randn(m, n, generator=gen, dtype=torch.float64).to(device)
    layers = balanced_factors(start, args.depth, widths, rng=args.seed)
    point = geoopt.ManifoldParameter(manifold.pack(layers), manifold=manifold)
    optimizer = geoopt.optim.RiemannianSGD([point], lr=0.05, momentum=0.9)
    steps = 300 if args.fast else 1000
    tic = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = 0.5 * ((manifold.end_to_end(point) @ inputs - targets) ** 2).sum() / samples
        loss.backward()
        optimizer.step()
    x = manifold.end_to_end(point.detach())
    results["regression-sgd"] = {
        "widths": list(widths),
        "steps": steps,
        "loss": float(loss.detach()),
        "relative_error": float((x - truth).norm() / truth.norm()),
        "balanced": bool(manifold.check_point_on_manifold(point.detach(), atol=1e-10)),
        "seconds": time.perf_counter() - tic,
    }

    size, rank, problem = arora_problem(args)
    truth, rows, cols, values = observed_tensors(problem, device)
    manifold = BalancedManifold((size,) * (args.depth + 1))
    # A small balanced start: end-to-end scale ~1e-3 per singular value.
    start = manifold.random(generator=gen)
    start = start * (1e-3 ** (1.0 / args.depth))
    point = geoopt.ManifoldParameter(start.to(device), manifold=manifold)
    optimizer = geoopt.optim.RiemannianSGD([point], lr=5.0)
    steps = 600 if args.fast else 2500
    tic = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        x = manifold.end_to_end(point)
        loss = 0.5 * ((x[rows, cols] - values) ** 2).mean()
        loss.backward()
        optimizer.step()
    x = manifold.end_to_end(point.detach())
    sv = torch.linalg.svdvals(x)
    results["completion-sgd"] = {
        "steps": steps,
        "train_loss": float(loss.detach()),
        "test_error": float((x - truth).norm() / truth.norm()),
        "effective_rank": int((sv > 1e-3 * sv[0]).sum()),
        "seconds": time.perf_counter() - tic,
    }
    return results


def main(argv: list[str] | None = None) -> dict | None:
    parser = example_parser(__doc__)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    args = parse_example_args(parser, argv)
    if torch is None:
        print(f"skipped: needs the torch extra (pip install 'dlnmanifolds[torch]'): {MISSING}")
        return None
    device = torch.device(args.device)
    report = {"device": str(device), "regression": regression(args, device)}
    report["completion"] = completion(args, device)
    report["balanced"] = balanced(args, device)
    print(json.dumps(report, indent=2))
    (args.output / "geoopt_training.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])

"""Shared pieces of the flows: starting points, flat packing, monitored quantities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlnmanifolds.core._validate import (
    as_rng,
    as_weights,
    check_positive_int,
    check_positive_number,
)
from dlnmanifolds.core.balanced import _rebalance
from dlnmanifolds.core.network import _end_to_end, _invariants
from dlnmanifolds.flows.energy import Energy


def is_widths(spec) -> bool:
    return (
        isinstance(spec, Sequence)
        and not isinstance(spec, (str, bytes))
        and len(spec) >= 2
        and all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in spec)
    )


def gaussian_layers(
    widths: Sequence[int], init_scale: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """W_p with i.i.d. N(0, (init_scale^{1/N} / sqrt(d_{p-1}))^2) entries.

    The deep-matrix-factorization initialisation of Arora, Cohen, Hu & Luo 2019
    (official code; math.md §9): ||phi(W)||_F is of order init_scale * sqrt(d).
    """
    depth = len(widths) - 1
    std = float(init_scale) ** (1.0 / depth)
    return [
        rng.standard_normal((widths[p + 1], widths[p])) * std / np.sqrt(widths[p])
        for p in range(depth)
    ]


def start_weights(weights, rng, init_scale: float, name: str = "weights") -> list[np.ndarray]:
    """Layers as given, or a Gaussian start when ``weights`` is a widths tuple of ints."""
    if is_widths(weights):
        widths = tuple(check_positive_int(d, f"{name}[{k}]") for k, d in enumerate(weights))
        init_scale = check_positive_number(init_scale, "init_scale")
        return gaussian_layers(widths, init_scale, as_rng(rng))
    return [np.array(w) for w in as_weights(weights, name)]


def packer(layers: Sequence[np.ndarray]):
    """(pack, unpack) between a list of layers and one flat float64 vector."""
    shapes = [w.shape for w in layers]
    sizes = [int(np.prod(s)) for s in shapes]
    offsets = np.cumsum([0] + sizes)

    def pack(ws):
        return np.concatenate([np.ravel(w) for w in ws])

    def unpack(y):
        return tuple(y[offsets[k] : offsets[k + 1]].reshape(shapes[k]) for k in range(len(shapes)))

    return pack, unpack


def invariants_norm(weights) -> float:
    """sqrt(sum_p ||G_p||_F^2) (math.md §2.1)."""
    return float(np.sqrt(sum(np.sum(g**2) for g in _invariants(weights))))


def distance_to_balanced(weights) -> float:
    """||W - rebalance(W)||_F: distance to a balanced point of the same fiber (>= dist(W, M))."""
    if len(weights) == 1:
        return 0.0
    target = _rebalance(weights)
    return float(np.sqrt(sum(np.sum((w - b) ** 2) for w, b in zip(weights, target))))


def upstairs_monitor(energy: Energy | None):
    """The standard monitored quantities of an upstairs state."""

    def monitor(weights):
        x = _end_to_end(weights)
        return {
            "energy": None if energy is None else float(energy.value(x)),
            "end_to_end": x,
            "invariants_norm": invariants_norm(weights),
            "distance_to_balanced": distance_to_balanced(weights),
        }

    return monitor


def check_callback(callback) -> None:
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable(t, state) or None, got {callback!r}")


def check_weight_decay(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"weight_decay must be a number >= 0, got {type(value).__name__}")
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {value}")
    return float(value)

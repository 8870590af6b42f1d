"""Bad-input sweep: every public function and constructor, fed malformed input;
the manifolds' hot-path methods through ``validated``; flows with spans that cannot
finish (each case under a 10 s watchdog).

Each ``Entry`` is one callable with a generator of valid keyword arguments and
the *kind* of each argument. Hypothesis picks one argument, corrupts it with a
corruption valid for its kind (wrong type, shape, NaN/inf, zero/negative depth,
rank deficiency, off-manifold point, empty array, ...) and asserts that the call
raises ValueError/TypeError whose message names the argument -- never returns
(a NaN result), hangs, or lets a bare numpy error (LinAlgError) escape.

To cover a new function, add one ``Entry`` to ``ENTRIES``.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pymanopt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dlnmanifolds
import dlnmanifolds.core as core
from dlnmanifolds.pymanopt import BalancedManifold, DLNMatrices
from dlnmanifolds.testing import check_geomstats_bundle, check_geomstats_space, check_manifold
from tests.helpers import balanced_point, matrix_with_spectrum, random_layers

#: Examples per entry; with len(ENTRIES) entries the sweep runs the product.
SWEEP_EXAMPLES = 70
#: A call taking longer than this (seconds) counts as a hang.
DEADLINE = 10.0


# -- corruptions ---------------------------------------------------------------------
def _matrix_corruptions(value, data, batch=False, shaped=False):
    kinds = ["str", "none", "dict", "1d", "empty", "nan", "inf", "complex", "object"]
    if not batch:
        kinds.append("3d")
    if shaped:
        kinds += ["extra_row", "extra_col"]
    kind = data.draw(st.sampled_from(kinds), label="corruption")
    v = np.array(value, dtype=float)
    if kind == "str":
        return "matrix"
    if kind == "none":
        return None
    if kind == "dict":
        return {"a": 1}
    if kind == "1d":
        return v.ravel()
    if kind == "3d":
        return v[None]
    if kind == "empty":
        return np.zeros((0,) + v.shape[1:])
    if kind in ("nan", "inf"):
        flat = v.ravel().copy()
        flat[data.draw(st.integers(0, flat.size - 1), label="index")] = (
            np.nan if kind == "nan" else -np.inf
        )
        return flat.reshape(v.shape)
    if kind == "complex":
        return v + 1j
    if kind == "object":
        return np.array([["a"] * v.shape[-1]] * v.shape[-2], dtype=object)
    if kind == "extra_row":
        return np.vstack([v, v[:1]])
    return np.hstack([v, v[:, :1]])


def _weights_corruptions(value, data, chained_shapes=False):
    """Corrupt a layer sequence. ``chained_shapes``: the layer shapes are fixed by
    another argument, so dropping a layer or changing widths is also invalid."""
    kinds = ["str", "int", "none", "empty", "layer_nan", "layer_inf", "layer_1d",
             "layer_str", "chain_break", "layer_empty", "layer_complex"]
    if chained_shapes:
        kinds += ["drop_layer", "widen_layer"]
    kind = data.draw(st.sampled_from(kinds), label="corruption")
    layers = [np.array(w, dtype=float) for w in value]
    p = data.draw(st.integers(0, len(layers) - 1), label="layer")
    if kind == "str":
        return "weights"
    if kind == "int":
        return 3
    if kind == "none":
        return None
    if kind == "empty":
        return []
    if kind in ("layer_nan", "layer_inf"):
        layers[p] = layers[p].copy()
        layers[p][0, 0] = np.nan if kind == "layer_nan" else np.inf
    elif kind == "layer_1d":
        layers[p] = layers[p].ravel()
    elif kind == "layer_str":
        layers[p] = "layer"
    elif kind == "layer_empty":
        layers[p] = np.zeros((0, layers[p].shape[1]))
    elif kind == "layer_complex":
        layers[p] = layers[p] + 1j
    elif kind == "chain_break":
        if len(layers) == 1:
            return [layers[0], np.ones((2, layers[0].shape[0] + 1))]
        layers[p] = np.ones((layers[p].shape[0] + 1, layers[p].shape[1] + 1))
    elif kind == "drop_layer":
        if len(layers) == 1:
            return [layers[0], layers[0].T]  # adds a layer instead
        layers = layers[:-1]
    elif kind == "widen_layer":
        layers[-1] = np.vstack([layers[-1], layers[-1][:1]])
    return layers


def _int_corruptions(value, data, upper=None):
    bad = [0, -1, -7, 2.5, "3", None, True, [2], np.float64(2.0)]
    if upper is not None:
        bad.append(upper + 1)
    return data.draw(st.sampled_from(bad), label="corruption")


def _widths_corruptions(value, data, fixed=True):
    bad = [3, "33", None, [], [3], [3, 0, 3], [3, -2, 3], [3, 2.5, 3], [3, "a", 3],
           [3, None, 3], {"d": 3}]
    if fixed:  # widths constrained by the other arguments
        bad += [tuple(value) + (value[-1],), (value[0] + 1,) + tuple(value[1:]),
                tuple(value[:-1]) + (value[-1] + 1,)]
    return data.draw(st.sampled_from(bad), label="corruption")


def _rng_corruptions(value, data):
    return data.draw(st.sampled_from(["seed", 1.5, [1], object(), True, np.zeros(2)]),
                     label="corruption")


def _scalar_array_corruptions(value, data):
    kind = data.draw(st.sampled_from(["nan", "inf", "negative", "str", "complex", "none",
                                      "object"]), label="corruption")
    v = np.array(value, dtype=float)
    if kind == "nan":
        return np.where(np.arange(v.size).reshape(v.shape) == 0, np.nan, v)
    if kind == "inf":
        return np.where(np.arange(v.size).reshape(v.shape) == 0, np.inf, v)
    if kind == "negative":
        return -v - 1.0
    if kind == "str":
        return "sigma"
    if kind == "complex":
        return v + 1j
    if kind == "none":
        return None
    return np.array(["a"] * v.size, dtype=object)


def _rank_deficient_matrix(value, data):
    v = np.array(value, dtype=float)
    u, s, vt = np.linalg.svd(v, full_matrices=False)
    s[-1] = data.draw(st.sampled_from([0.0, 1e-17 * s[0]]), label="tiny")
    return (u * s) @ vt


def _full_rank_matrix_corruptions(value, data, shaped=True, batch=False):
    if data.draw(st.booleans(), label="rank_deficient"):
        return _rank_deficient_matrix(value, data)
    return _matrix_corruptions(value, data, shaped=shaped, batch=batch)


def _off_balanced_corruptions(value, data, chained_shapes=False):
    kind = data.draw(st.sampled_from(["unbalanced", "rank_deficient", "other"]),
                     label="off_manifold")
    layers = [np.array(w, dtype=float) for w in value]
    if kind == "unbalanced":
        layers[0] = 1.5 * layers[0]
        return layers
    if kind == "rank_deficient":
        layers[0] = np.zeros_like(layers[0])
        return layers
    return _weights_corruptions(value, data, chained_shapes=chained_shapes)


def _unbalanced(value, data):
    layers = [np.array(w, dtype=float) for w in value]
    p = data.draw(st.integers(0, len(layers) - 1), label="layer")
    layers[p] = layers[p] * data.draw(st.sampled_from([0.0, 0.5, 1.5, 3.0]), label="scale")
    return layers


def _choice_corruptions(value, data):
    return data.draw(st.sampled_from(["bogus", 3, None, ""]), label="corruption")


def _not_positive_number(value, data):
    return data.draw(st.sampled_from([0.0, -1.0, float("nan"), float("inf"), "hot", None]),
                     label="corruption")


def _not_callable(value, data):
    return data.draw(st.sampled_from([3, "membership", [1.0]]), label="corruption")


def _not_a_manifold(value, data):
    from geomstats.geometry.hypersphere import Hypersphere

    return data.draw(st.sampled_from(["sphere", 3, None, [1, 2], Hypersphere(2)]),
                     label="corruption")


def _not_a_geomstats_space(value, data):
    return data.draw(st.sampled_from(["sphere", 3, None, pymanopt.manifolds.Sphere(3)]),
                     label="corruption")


def _not_a_cost(value, data):
    return data.draw(st.sampled_from([lambda x: 0.0, "cost", 3]), label="corruption")


def _bad_points(value, data):
    return data.draw(st.sampled_from([[], "points", 3, ()]), label="corruption")


def _bad_tolerances(value, data):
    return data.draw(st.sampled_from([{"no.such.check": 1e-8},
                                      {"retraction.first_order": "high"},
                                      {"retraction.first_order": float("nan")},
                                      [("retraction.first_order", 1.9)], "strict"]),
                     label="corruption")


CORRUPTIONS: dict[str, Callable[[Any, Any], Any]] = {
    "matrix": _matrix_corruptions,
    "matrix_batch": lambda v, d: _matrix_corruptions(v, d, batch=True),
    "matrix_shaped": lambda v, d: _matrix_corruptions(v, d, shaped=True),
    "matrix_batch_shaped": lambda v, d: _matrix_corruptions(v, d, batch=True, shaped=True),
    "full_rank_matrix": lambda v, d: _full_rank_matrix_corruptions(v, d, shaped=False),
    "full_rank_matrix_batch": lambda v, d: _full_rank_matrix_corruptions(v, d, False, True),
    "full_rank_point": _full_rank_matrix_corruptions,
    "full_rank_point_batch": lambda v, d: _full_rank_matrix_corruptions(v, d, True, True),
    "weights": _weights_corruptions,
    "weights_chained": lambda v, d: _weights_corruptions(v, d, chained_shapes=True),
    "balanced_weights": _off_balanced_corruptions,
    "balanced_point": lambda v, d: _off_balanced_corruptions(v, d, chained_shapes=True),
    "unbalanced_weights": _unbalanced,
    "depth": _int_corruptions,
    "posint": _int_corruptions,
    "rank3": lambda v, d: _int_corruptions(v, d, upper=3),
    "widths": _widths_corruptions,
    "free_widths": lambda v, d: _widths_corruptions(v, d, fixed=False),
    "rng": _rng_corruptions,
    "nonneg_array": _scalar_array_corruptions,
    "retraction": _choice_corruptions,
    "positive": _not_positive_number,
    "callable": _not_callable,
    "manifold": _not_a_manifold,
    "geomstats_space": _not_a_geomstats_space,
    "cost": _not_a_cost,
    "points": _bad_points,
    "tolerances": _bad_tolerances,
    "nonneg_int": lambda v, d: d.draw(st.sampled_from([-1, 2.5, "4", None]), label="c"),
}


# -- registry ------------------------------------------------------------------------
@dataclass
class Entry:
    """One public callable: valid(rng) -> kwargs; kinds: argument -> corruption kind;
    aliases: argument -> words one of which the error message must contain."""

    name: str
    func: Callable[..., Any]
    valid: Callable[[np.random.Generator], dict[str, Any]]
    kinds: dict[str, str]
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()  # arguments for which None is valid
    known_failure: str = ""  # a reported, not yet fixed finding (strict xfail)

    def names_for(self, arg: str) -> tuple[str, ...]:
        return self.aliases.get(arg, (arg,))


def _square(rng, d=3):
    return matrix_with_spectrum(d, d, np.sort(rng.uniform(0.5, 2.0, d))[::-1], rng)


def _near_pair(rng):
    # Nearby points: the shooting method of dln_log converges in a few steps.
    x = _square(rng)
    return {"X": x, "Y": x + 0.05 * rng.standard_normal((3, 3)), "depth": 2}


def _core(name):
    """A core function by name (skipped in the sweep if not exported yet)."""
    return getattr(core, name, None)


def _weights(rng, widths=(3, 4, 2)):
    return {"weights": random_layers(widths, rng)}


def _weights_tangent(rng, widths=(3, 4, 2)):
    return {"weights": random_layers(widths, rng), "tangent": random_layers(widths, rng)}


def _w_z(rng, depth=3):
    return {"W": _square(rng), "Z": rng.standard_normal((3, 3)), "depth": depth}


# A shape mismatch between weights and tangent may be reported on either.
_PAIR_ALIASES = {"weights": ("weights", "tangent")}
_WZ_KINDS = {"W": "matrix_batch", "Z": "matrix_batch_shaped", "depth": "depth"}
_WZ_ALIASES = {"Z": ("z",)}
_WZ_FULL_RANK = {"W": "full_rank_matrix_batch", "Z": "matrix_batch_shaped", "depth": "depth"}

ENTRIES: list[Entry] = [
    # core, network (math.md §1-2)
    Entry("end_to_end", core.end_to_end, _weights, {"weights": "weights"}),
    Entry("invariants", core.invariants, _weights, {"weights": "weights"}),
    Entry("imbalance", core.imbalance, _weights, {"weights": "weights"}),
    Entry("partial_products", core.partial_products, _weights, {"weights": "weights"}),
    Entry("dphi", core.dphi, _weights_tangent,
          {"weights": "weights", "tangent": "weights_chained"}, _PAIR_ALIASES),
    Entry("dphi_adjoint", core.dphi_adjoint,
          lambda rng: {"weights": random_layers((3, 4, 2), rng),
                       "z": rng.standard_normal((2, 3))},
          {"weights": "weights", "z": "matrix_shaped"}),
    # core, operator and kernel (math.md §3-4)
    Entry("dln_operator", core.dln_operator, _w_z, _WZ_KINDS, _WZ_ALIASES),
    Entry("dln_operator_rank", core.dln_operator,
          lambda rng: {**_w_z(rng), "rank": 2}, {"rank": "rank3"}, optional=frozenset({"rank"})),
    Entry("dln_operator_inverse", core.dln_operator_inverse, _w_z, _WZ_FULL_RANK, _WZ_ALIASES),
    Entry("dln_operator_sqrt", core.dln_operator_sqrt, _w_z, _WZ_KINDS, _WZ_ALIASES),
    Entry("dln_inner", core.dln_inner,
          lambda rng: {"W": _square(rng), "Z1": rng.standard_normal((3, 3)),
                       "Z2": rng.standard_normal((3, 3)), "depth": 2},
          {"W": "full_rank_matrix_batch", "Z1": "matrix_batch_shaped", "Z2": "matrix_batch_shaped",
           "depth": "depth"}),
    Entry("dln_kernel", core.dln_kernel,
          lambda rng: {"a": rng.uniform(0.1, 2, 4), "b": rng.uniform(0.1, 2, 4), "depth": 3},
          {"a": "nonneg_array", "b": "nonneg_array", "depth": "depth"}),
    # core, balanced points (math.md §2.2)
    Entry("balanced_factors", core.balanced_factors,
          lambda rng: {"W": _square(rng), "depth": 3, "widths": (3, 4, 4, 3), "rng": 1},
          {"W": "matrix", "depth": "depth", "widths": "widths", "rng": "rng"},
          optional=frozenset({"widths"})),
    Entry("balanced_frames", core.balanced_frames,
          lambda rng: {"weights": balanced_point((3, 3, 3), rng), "rank": 3},
          {"weights": "weights", "rank": "rank3"}, optional=frozenset({"rank"})),
    Entry("balanced_frames_off_manifold", core.balanced_frames,
          lambda rng: {"weights": balanced_point((3, 3, 3), rng)},
          {"weights": "unbalanced_weights"}),
    # core, entropy / fiber / orbit (concurrent modules; skipped until exported)
    # core, free energy and Langevin drift (math.md §8.3)
    Entry("free_energy", _core("free_energy"),
          lambda rng: {"W": _square(rng), "depth": 3, "energy": 0.7, "beta": 2.0},
          {"W": "matrix", "depth": "depth", "beta": "positive"}),
    Entry("langevin_drift", _core("langevin_drift"),
          lambda rng: {"W": _square(rng), "egrad": rng.standard_normal((3, 3)), "depth": 3,
                       "beta": 2.0, "potential": "free_energy"},
          {"W": "full_rank_matrix_batch", "egrad": "matrix_batch_shaped", "depth": "depth",
           "beta": "positive", "potential": "retraction"}),
    Entry("boltzmann_entropy", _core("boltzmann_entropy"),
          lambda rng: {"W": _square(rng), "depth": 3},
          {"W": "matrix", "depth": "depth"}),  # rank-deficient W is valid (leaf M_r)
    Entry("entropy_gradient", _core("entropy_gradient"),
          lambda rng: {"W": _square(rng), "depth": 3},
          {"W": "matrix", "depth": "depth"}),
    # O(0) and St(n, 0) are one point (volume 1), so 0 is valid here.
    Entry("orthogonal_group_volume", _core("orthogonal_group_volume"),
          lambda rng: {"d": 3}, {"d": "nonneg_int"}),
    Entry("stiefel_volume", _core("stiefel_volume"),
          lambda rng: {"n": 4, "r": 2}, {"n": "nonneg_int", "r": "nonneg_int"}),
    Entry("dln_exp", _core("dln_exp"),
          lambda rng: {"X": _square(rng), "V": 0.1 * rng.standard_normal((3, 3)), "depth": 2},
          {"X": "full_rank_matrix_batch", "V": "matrix_batch_shaped", "depth": "depth"}),
    Entry("dln_log", _core("dln_log"),
          lambda rng: _near_pair(rng),
          {"X": "full_rank_matrix_batch", "Y": "full_rank_point_batch", "depth": "depth"}),
    Entry("fiber_projection", _core("fiber_projection"), _weights_tangent,
          {"weights": "weights", "tangent": "weights_chained"}, _PAIR_ALIASES),
    Entry("gl_action", _core("gl_action"),
          lambda rng: {"weights": random_layers((3, 3, 3), rng), "group": [_square(rng)]},
          {"weights": "weights", "group": "weights"}),
    Entry("orbit_projection", _core("orbit_projection"),
          lambda rng: {"weights": balanced_point((3, 3, 3), rng),
                       "tangent": random_layers((3, 3, 3), rng)},
          {"weights": "balanced_weights", "tangent": "weights_chained"}, _PAIR_ALIASES),
    Entry("orthogonal_action", _core("orthogonal_action"),
          lambda rng: {"weights": balanced_point((3, 3, 3), rng),
                       "rotations": [np.linalg.qr(rng.standard_normal((3, 3)))[0]]},
          {"weights": "weights", "rotations": "weights"}),
    # Pymanopt adapters: constructors and the validating methods
    Entry("BalancedManifold", BalancedManifold,
          lambda rng: {"widths": (3, 4, 3), "retraction": "polar", "rng": 2},
          {"widths": "free_widths", "retraction": "retraction", "rng": "rng"}),
    Entry("BalancedManifold.check_point",
          lambda point: BalancedManifold((3, 3, 3)).check_point(point),
          lambda rng: {"point": balanced_point((3, 3, 3), rng)}, {"point": "balanced_point"}),
    Entry("DLNMatrices", DLNMatrices,
          lambda rng: {"m": 3, "n": 2, "depth": 2, "rng": 1},
          {"m": "posint", "n": "posint", "depth": "depth", "rng": "rng"}),
    Entry("DLNMatrices.check_point",
          lambda point: DLNMatrices(3, 3, 2).check_point(point),
          lambda rng: {"point": _square(rng)}, {"point": "full_rank_point"}),
    # dlnmanifolds.testing itself
    Entry("check_manifold", check_manifold,
          lambda rng: {"manifold": pymanopt.manifolds.Sphere(3), "n_points": 1, "rng": 0,
                       "cost": None, "points": None, "membership": None,
                       "tolerances": None, "retraction_order": None, "max_ambient_dim": 10},
          {"manifold": "manifold", "n_points": "posint", "rng": "rng", "cost": "cost",
           "points": "points", "membership": "callable", "tolerances": "tolerances",
           "retraction_order": "posint", "max_ambient_dim": "nonneg_int"},
          optional=frozenset({"retraction_order"})),
    Entry("check_geomstats_space", check_geomstats_space,
          lambda rng: {"space": _hypersphere(), "n_points": 1, "rng": 0, "points": None,
                       "tolerances": None},
          {"space": "geomstats_space", "n_points": "posint", "rng": "rng",
           "points": "points", "tolerances": "tolerances"}),
    Entry("check_geomstats_bundle", check_geomstats_bundle,
          lambda rng: {"bundle": _hypersphere(), "n_points": 1},
          {"bundle": "geomstats_space"}),
]


def _hypersphere():
    from geomstats.geometry.hypersphere import Hypersphere

    return Hypersphere(2)


def _optional_entries() -> list[Entry]:
    """Constructors of the concurrent Pymanopt modules (skipped if not importable)."""
    out = []
    try:
        from dlnmanifolds.pymanopt.fiber import Fiber

        out.append(Entry("Fiber", Fiber,
                         lambda rng: {"weights": random_layers((3, 3, 3), rng), "rng": 1},
                         {"weights": "weights", "rng": "rng"}))
    except ImportError:
        pass
    try:
        from dlnmanifolds.pymanopt.orbit import GroupOrbit

        out.append(Entry("GroupOrbit", GroupOrbit,
                         lambda rng: {"weights": balanced_point((3, 3, 3), rng), "rng": 1},
                         {"weights": "balanced_weights", "rng": "rng"}))
    except ImportError:
        pass
    try:
        from dlnmanifolds.pymanopt.fixed_rank import DLNFixedRank

        out.append(Entry("DLNFixedRank", DLNFixedRank,
                         lambda rng: {"m": 4, "n": 3, "rank": 2, "depth": 2, "rng": 1},
                         {"m": "posint", "n": "posint", "rank": "rank3", "depth": "depth",
                          "rng": "rng"}))
    except ImportError:
        pass
    return out


ENTRIES += _optional_entries()


# -- hot paths through validated(), the raw hot paths on non-finite input, the flows ------
def _seq(value):
    return [value] if isinstance(value, np.ndarray) else list(value)


def _like(original, arrays):
    if isinstance(original, np.ndarray):
        return arrays[0]
    if hasattr(original, "_fields"):  # (u, s, vt) and (Up, M, Vp) named tuples
        return type(original)(*arrays)
    return tuple(arrays) if isinstance(original, tuple) else list(arrays)


def _structure_corruption(value, data, extra=()):
    """Corrupt a point or vector made of arrays (one matrix, layers, or (u, s, vt))."""
    kinds = ["nan", "inf", "shape", "complex", "str", "none", "object", *extra]
    kind = data.draw(st.sampled_from(kinds), label="corruption")
    arrays = [np.array(a, dtype=float) for a in _seq(value)]
    p = data.draw(st.integers(0, len(arrays) - 1), label="part")
    if kind == "str":
        return "point"
    if kind == "none":
        return None
    if kind == "object":
        return _like(value, [np.array([["a"]], dtype=object)] * len(arrays))
    if kind in ("nan", "inf"):
        flat = arrays[p].ravel()
        flat[data.draw(st.integers(0, flat.size - 1), label="index")] = (
            np.nan if kind == "nan" else np.inf
        )
        arrays[p] = flat.reshape(arrays[p].shape)
    elif kind == "shape":
        arrays[p] = arrays[p][:-1] if arrays[p].shape[0] > 1 else np.zeros((2,) + arrays[p].shape)
    elif kind == "complex":
        arrays[p] = arrays[p] + 1j
    return _like(value, arrays)


def _validated_point(value, data):
    # Off the manifold: one part scaled (unbalanced, phi changed, non-orthonormal u, ...).
    if data.draw(st.booleans(), label="off_manifold"):
        arrays = [np.array(a, dtype=float) for a in _seq(value)]
        if len(arrays) == 1:  # DLNMatrices: the open set of full-rank matrices
            return np.zeros_like(arrays[0])
        arrays[0] = 1.7 * arrays[0]
        return _like(value, arrays)
    return _structure_corruption(value, data)


def _nonfinite(value, data):
    arrays = [np.array(a, dtype=float) for a in _seq(value)]
    p = data.draw(st.integers(0, len(arrays) - 1), label="part")
    arrays[p].flat[0] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]), label="value")
    return _like(value, arrays)


def _huge_span(value, data):
    return data.draw(st.sampled_from([1e200, 1e30, np.inf, np.nan, -1.0, 0.0, "1"]),
                     label="corruption")


def _huge_rate(value, data):
    return data.draw(st.sampled_from([1e200, 1e30, np.inf, np.nan, -1.0, "1"]),
                     label="corruption")


CORRUPTIONS.update({"validated_point": _validated_point, "nonfinite": _nonfinite,
                    "huge_span": _huge_span, "huge_rate": _huge_rate})


def _pymanopt_factories():
    from dlnmanifolds.pymanopt import DLNFixedRank, Fiber, GroupOrbit

    return {
        "BalancedManifold": lambda rng: BalancedManifold((3, 4, 3), rng=rng),
        "DLNMatrices": lambda rng: DLNMatrices(3, 3, 2, rng=rng),
        "Fiber": lambda rng: Fiber(random_layers((3, 3, 3), np.random.default_rng(rng)), rng=rng),
        "GroupOrbit": lambda rng: GroupOrbit(
            balanced_point((3, 3, 3), np.random.default_rng(rng)), rng=rng
        ),
        "DLNFixedRank": lambda rng: DLNFixedRank(4, 3, 2, 2, rng=rng),
    }


def _tangent_corruption(manifold_of, point_key):
    """Tangent-vector corruptions, plus 'not tangent': v + (g - P_x g) for a random g."""

    def corrupt(value, data):
        manifold = manifold_of()
        if data.draw(st.booleans(), label="not_tangent") and not isinstance(
            manifold.manifold, DLNMatrices  # every matrix is tangent to that open set
        ):
            point = _LAST[point_key]
            rng = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
            g = _like(value, [rng.standard_normal(np.shape(a)) for a in _seq(value)])
            projected = _seq(manifold.manifold.to_tangent_space(point, g))
            return _like(value, [np.asarray(v) + (np.asarray(a) - np.asarray(b))
                                 for v, a, b in zip(_seq(value), _seq(g), projected)])
        return _structure_corruption(value, data)

    return corrupt


_LAST: dict[str, Any] = {}


def _hot_path_entries() -> list[Entry]:
    """Every hot-path method of every manifold, through validated(): ValueError/TypeError
    naming the argument (never a numpy error deep inside, never a hang)."""
    from dlnmanifolds.pymanopt import validated

    out = []
    for cls_name, factory in _pymanopt_factories().items():
        holder: dict[str, Any] = {}

        def manifold_of(holder=holder):
            return holder["m"]

        def setup(rng, factory=factory, holder=holder):
            m = validated(factory(int(rng.integers(2**31))))
            holder["m"] = m
            x = m.random_point()
            y = m.retraction(x, 0.1 * m.random_tangent_vector(x))
            u, v = m.random_tangent_vector(x), m.random_tangent_vector(x)
            return m, x, y, u, v

        tangent_kind = f"tangent:{cls_name}"
        CORRUPTIONS[tangent_kind] = _tangent_corruption(manifold_of, cls_name)

        def valid_of(method, factory=factory, setup=setup, cls_name=cls_name):
            def valid(rng):
                m, x, y, u, v = setup(rng)
                _LAST[cls_name] = x
                egrad = _like(x, [rng.standard_normal(np.shape(a)) for a in _seq(x)])
                args = {
                    "retraction": {"point": x, "tangent_vector": u},
                    "norm": {"point": x, "tangent_vector": u},
                    "inner_product": {"point": x, "tangent_vector_a": u, "tangent_vector_b": v},
                    "transport": {"point_a": x, "point_b": y, "tangent_vector_a": u},
                    "euclidean_to_riemannian_gradient": {"point": x, "euclidean_gradient": egrad},
                    "to_tangent_space": {"point": x, "vector": u},
                }[method]
                return {"method": getattr(m, method), **args}

            return valid

        kinds = {
            "retraction": {"point": "validated_point", "tangent_vector": tangent_kind},
            "norm": {"point": "validated_point", "tangent_vector": tangent_kind},
            "inner_product": {"point": "validated_point", "tangent_vector_a": tangent_kind,
                              "tangent_vector_b": tangent_kind},
            "transport": {"point_a": "validated_point", "point_b": "validated_point",
                          "tangent_vector_a": tangent_kind},
            "euclidean_to_riemannian_gradient": {"point": "validated_point",
                                                 "euclidean_gradient": "nonfinite"},
            "to_tangent_space": {"point": "validated_point", "vector": "nonfinite"},
        }
        for method, method_kinds in kinds.items():
            out.append(Entry(
                f"validated({cls_name}).{method}",
                lambda method, **kwargs: method(**kwargs),
                valid_of(method), method_kinds,
            ))
        # The raw (unvalidated) hot paths: non-finite input is refused before LAPACK.
        raw_kinds = {"point": "nonfinite", "tangent_vector": "nonfinite"}

        def raw_valid(rng, setup=setup):
            m, x, _, u, _ = setup(rng)
            return {"method": m.manifold.retraction, "point": x, "tangent_vector": u}

        out.append(Entry(f"{cls_name}.retraction(non-finite)",
                         lambda method, **kwargs: method(**kwargs), raw_valid, raw_kinds))
    return out


def _energy():
    return (lambda x: 0.5 * float(np.sum(x**2)), lambda x: x)


def _flow_entries() -> list[Entry]:
    """Time spans and decay rates that cannot finish: refused, never a hang."""
    from dlnmanifolds.flows import end_to_end_flow, gradient_flow
    from dlnmanifolds.flows.langevin import langevin

    return [
        Entry("gradient_flow(t_final)", gradient_flow,
              lambda rng: {"energy": _energy(), "weights": random_layers((2, 2, 2), rng),
                           "t_final": 0.5},
              {"t_final": "huge_span"}),
        Entry("gradient_flow(gd, t_final)",
              lambda t_final, **kw: gradient_flow(t_final=t_final, method="gd", step=0.1, **kw),
              lambda rng: {"energy": _energy(), "weights": random_layers((2, 2, 2), rng),
                           "t_final": 0.5},
              {"t_final": "huge_span"}),
        Entry("gradient_flow(weight_decay)", gradient_flow,
              lambda rng: {"energy": _energy(), "weights": random_layers((2, 2, 2), rng),
                           "t_final": 0.5, "weight_decay": 0.1},
              {"weight_decay": "huge_rate"}),
        Entry("end_to_end_flow(weight_decay)", end_to_end_flow,
              lambda rng: {"energy": _energy(), "W": _square(rng), "depth": 2, "t_final": 0.5,
                           "weight_decay": 0.1},
              {"weight_decay": "huge_rate", "t_final": "huge_span"}),
        Entry("langevin(t_final)", langevin,
              lambda rng: {"energy": _energy(), "start": _square(rng), "beta": 10.0,
                           "space": "end_to_end", "depth": 2, "t_final": 0.01},
              {"t_final": "huge_span"}),
    ]


# Weight decay 1e30 over t_final 0.5 is refused (stiff: ~1e29 explicit steps); the
# span 1e30 with gradient descent too; an adaptive flow at t_final = 1e30 is stopped
# by the step budget; all name the argument.
ENTRIES += _hot_path_entries() + _flow_entries()
ACTIVE = [e for e in ENTRIES if e.func is not None and not e.known_failure]


# -- the sweep -----------------------------------------------------------------------
@contextlib.contextmanager
def _deadline(seconds: float):
    def alarm(signum, frame):
        raise TimeoutError(f"call did not return within {seconds} s (hang)")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _describe(value: Any) -> str:
    text = repr(value).replace("\n", " ")
    return text if len(text) < 160 else text[:157] + "..."


def _param(entry: Entry):
    marks = []
    if entry.known_failure:
        marks = [pytest.mark.xfail(strict=True, reason=entry.known_failure)]
    return pytest.param(entry, id=entry.name, marks=marks)


@pytest.mark.parametrize("entry", [_param(e) for e in ENTRIES])
def test_bad_input_raises_clean_error(entry: Entry):
    if entry.func is None:
        pytest.skip(f"{entry.name} is not exported yet")
    cases = []

    @settings(max_examples=SWEEP_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data):
        kwargs = entry.valid(np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))))
        arg = data.draw(st.sampled_from(sorted(entry.kinds)), label="argument")
        bad = CORRUPTIONS[entry.kinds[arg]](kwargs[arg], data)
        if bad is None and arg in entry.optional:
            bad = "none-like"  # None is a valid value here
        kwargs[arg] = bad
        where = f"{entry.name}({arg}={_describe(bad)})"
        try:
            with _deadline(DEADLINE):
                result = entry.func(**kwargs)
        except np.linalg.LinAlgError as exc:
            raise AssertionError(f"{where} leaked numpy LinAlgError: {exc}") from exc
        except (ValueError, TypeError) as exc:
            message = str(exc).lower()
            names = entry.names_for(arg)
            assert any(n.lower() in message for n in names), (
                f"{where} raised {type(exc).__name__} not naming {names}: {exc}"
            )
            cases.append(arg)
            return
        raise AssertionError(f"{where} did not raise; returned {_describe(result)}")

    run()
    assert len(cases) >= SWEEP_EXAMPLES, f"only {len(cases)} cases ran"
    never = set(entry.kinds) - set(cases)
    assert not never, f"arguments never corrupted: {never}"


def test_sweep_size():
    """The CI run generates at least 5000 bad-input cases in total, hot paths included."""
    total = len(ACTIVE) * SWEEP_EXAMPLES
    print(f"bad-input sweep: {len(ACTIVE)} entries x {SWEEP_EXAMPLES} examples = {total}")
    assert total >= 5000
    hot = [e for e in ACTIVE if e.name.startswith("validated(")]
    assert {e.name.split(".")[-1] for e in hot} >= {
        "retraction", "inner_product", "transport", "euclidean_to_riemannian_gradient"}


def test_registry_covers_public_api():
    """Every public function of dlnmanifolds and dlnmanifolds.core has an entry."""
    covered = {e.func for e in ACTIVE} | {e.name for e in ACTIVE}
    public = set(getattr(core, "__all__", [])) | set(getattr(dlnmanifolds, "__all__", []))
    def obj(n):
        return getattr(core, n, getattr(dlnmanifolds, n, None))

    missing = sorted(
        n for n in public
        if callable(obj(n)) and not (isinstance(obj(n), type) and issubclass(obj(n), Exception))
        and obj(n) not in covered and n not in covered
    )
    assert not missing, f"add bad-input entries for: {missing}"

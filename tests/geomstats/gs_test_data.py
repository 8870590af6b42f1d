"""Test data for Geomstats' test cases, vendored from geomstats 2.8.0 (BSD-3-Clause):
tests/tests_geomstats/test_geometry/data/{manifold,mixins,base,connection,riemannian_metric,
fiber_bundle}.py at commit e4f14ea41 ("Bump 2.8.0"), trimmed to the classes we use, plus our
subclasses that list skipped tests with the reason for each.

Geomstats ships the test cases (geomstats.test_cases) but not these data classes.
"""

from geomstats.test.data import TestData

# ---- vendored from geomstats 2.8.0 -------------------------------------------------------


class _ManifoldMixinsTestData:
    def belongs_vec_test_data(self):
        return self.generate_vec_data()

    def not_belongs_test_data(self):
        return self.generate_random_data()

    def random_point_belongs_test_data(self):
        return self.generate_random_data()

    def random_point_shape_test_data(self):
        return self.generate_shape_data()

    def is_tangent_vec_test_data(self):
        return self.generate_vec_data()

    def to_tangent_vec_test_data(self):
        return self.generate_vec_data()

    def to_tangent_is_tangent_test_data(self):
        return self.generate_random_data()

    def regularize_belongs_test_data(self):
        return self.generate_random_data()

    def regularize_vec_test_data(self):
        return self.generate_vec_data()

    def random_tangent_vec_is_tangent_test_data(self):
        return self.generate_random_data()

    def random_tangent_vec_shape_test_data(self):
        return self.generate_shape_data()


class ManifoldTestData(_ManifoldMixinsTestData, TestData):
    pass


class ProjectionMixinsTestData:
    def projection_vec_test_data(self):
        return self.generate_vec_data()

    def projection_belongs_test_data(self):
        return self.generate_random_data()


class LevelSetTestData(ProjectionMixinsTestData, ManifoldTestData):
    def submersion_vec_test_data(self):
        return self.generate_vec_data()

    def tangent_submersion_vec_test_data(self):
        return self.generate_vec_data()


class DistMixinsTestData:
    def dist_vec_test_data(self):
        return self.generate_vec_data()

    def dist_is_symmetric_test_data(self):
        return self.generate_random_data()

    def dist_is_positive_test_data(self):
        return self.generate_random_data()

    def dist_point_to_itself_is_zero_test_data(self):
        return self.generate_random_data()

    def dist_triangle_inequality_test_data(self):
        return self.generate_random_data()


class GeodesicBVPMixinsTestData:
    def geodesic_bvp_vec_test_data(self):
        return self.generate_vec_data_with_time()

    def geodesic_boundary_points_test_data(self):
        return self.generate_random_data()

    def geodesic_bvp_reverse_test_data(self):
        return self.generate_random_data_with_time()

    def geodesic_bvp_belongs_test_data(self):
        return self.generate_random_data_with_time()


class ConnectionTestData(GeodesicBVPMixinsTestData, TestData):
    def christoffels_vec_test_data(self):
        return self.generate_vec_data()

    def geodesic_equation_vec_test_data(self):
        return self.generate_vec_data()

    def exp_vec_test_data(self):
        return self.generate_vec_data()

    def exp_belongs_test_data(self):
        return self.generate_random_data()

    def log_vec_test_data(self):
        return self.generate_vec_data()

    def log_is_tangent_test_data(self):
        return self.generate_random_data()

    def exp_after_log_test_data(self):
        return self.generate_random_data()

    def log_after_exp_test_data(self):
        return self.generate_random_data()

    def riemann_tensor_vec_test_data(self):
        return self.generate_vec_data()

    def curvature_vec_test_data(self):
        return self.generate_vec_data()

    def ricci_tensor_vec_test_data(self):
        return self.generate_vec_data()

    def directional_curvature_vec_test_data(self):
        return self.generate_vec_data()

    def curvature_derivative_vec_test_data(self):
        return self.generate_vec_data()

    def directional_curvature_derivative_vec_test_data(self):
        return self.generate_vec_data()

    def geodesic_ivp_vec_test_data(self):
        return self.generate_vec_data_with_time()

    def geodesic_ivp_belongs_test_data(self):
        return self.generate_random_data_with_time()

    def exp_geodesic_ivp_test_data(self):
        return self.generate_random_data()

    def parallel_transport_ivp_vec_test_data(self):
        return self.generate_vec_data()

    def parallel_transport_bvp_vec_test_data(self):
        return self.generate_vec_data()

    def parallel_transport_bvp_transported_is_tangent_test_data(self):
        return self.generate_random_data()

    def parallel_transport_ivp_transported_is_tangent_test_data(self):
        return self.generate_random_data()

    def injectivity_radius_vec_test_data(self):
        return self.generate_vec_data()


class RiemannianMetricTestData(DistMixinsTestData, ConnectionTestData):
    def metric_matrix_vec_test_data(self):
        return self.generate_vec_data()

    def metric_matrix_is_spd_test_data(self):
        return self.generate_random_data()

    def cometric_matrix_vec_test_data(self):
        return self.generate_vec_data()

    def inner_product_derivative_matrix_vec_test_data(self):
        return self.generate_vec_data()

    def inner_product_vec_test_data(self):
        return self.generate_vec_data()

    def inner_product_is_symmetric_test_data(self):
        return self.generate_random_data()

    def inner_coproduct_vec_test_data(self):
        return self.generate_vec_data()

    def squared_norm_vec_test_data(self):
        return self.generate_vec_data()

    def norm_vec_test_data(self):
        return self.generate_vec_data()

    def norm_is_positive_test_data(self):
        return self.generate_random_data()

    def normalize_vec_test_data(self):
        return self.generate_vec_data()

    def normalize_is_unitary_test_data(self):
        return self.generate_random_data()

    def squared_dist_vec_test_data(self):
        return self.generate_vec_data()

    def squared_dist_is_symmetric_test_data(self):
        return self.generate_random_data()

    def squared_dist_is_positive_test_data(self):
        return self.generate_random_data()

    def dist_is_log_norm_test_data(self):
        return self.generate_random_data()

    def covariant_riemann_tensor_vec_test_data(self):
        return self.generate_vec_data()

    def covariant_riemann_tensor_is_skew_symmetric_1_test_data(self):
        return self.generate_random_data()

    def covariant_riemann_tensor_is_skew_symmetric_2_test_data(self):
        return self.generate_random_data()

    def covariant_riemann_tensor_bianchi_identity_test_data(self):
        return self.generate_random_data()

    def covariant_riemann_tensor_is_interchange_symmetric_test_data(self):
        return self.generate_random_data()

    def sectional_curvature_vec_test_data(self):
        return self.generate_vec_data()

    def scalar_curvature_vec_test_data(self):
        return self.generate_vec_data()

    def parallel_transport_ivp_norm_test_data(self):
        return self.generate_random_data()

    def parallel_transport_bvp_norm_test_data(self):
        return self.generate_random_data()


class FiberBundleTestData(TestData):
    def riemannian_submersion_vec_test_data(self):
        return self.generate_vec_data()

    def riemannian_submersion_belongs_to_base_test_data(self):
        return self.generate_random_data()

    def lift_vec_test_data(self):
        return self.generate_vec_data()

    def lift_belongs_to_total_space_test_data(self):
        return self.generate_random_data()

    def riemannian_submersion_after_lift_test_data(self):
        return self.generate_random_data()

    def tangent_riemannian_submersion_vec_test_data(self):
        return self.generate_vec_data()

    def tangent_riemannian_submersion_is_tangent_test_data(self):
        return self.generate_random_data()

    def align_vec_test_data(self):
        return self.generate_vec_data()

    def log_after_align_is_horizontal_test_data(self):
        return self.generate_random_data()

    def horizontal_projection_vec_test_data(self):
        return self.generate_vec_data()

    def horizontal_projection_is_horizontal_test_data(self):
        return self.generate_random_data()

    def vertical_projection_vec_test_data(self):
        return self.generate_vec_data()

    def vertical_projection_is_vertical_test_data(self):
        return self.generate_random_data()

    def tangent_riemannian_submersion_after_vertical_projection_test_data(self):
        return self.generate_random_data()

    def is_horizontal_vec_test_data(self):
        return self.generate_vec_data()

    def is_vertical_vec_test_data(self):
        return self.generate_vec_data()

    def horizontal_lift_vec_test_data(self):
        return self.generate_vec_data()

    def horizontal_lift_is_horizontal_test_data(self):
        return self.generate_random_data()

    def tangent_riemannian_submersion_after_horizontal_lift_test_data(self):
        return self.generate_random_data()

    def integrability_tensor_vec_test_data(self):
        return self.generate_vec_data()

    def integrability_tensor_derivative_vec_test_data(self):
        return self.generate_vec_data()


# ---- ours -----------------------------------------------------------------------------------

_NO_CONNECTION_TENSORS = (
    # Not implemented (Geomstats raises NotImplementedError or needs autodiff): Christoffel
    # symbols / curvature would need derivatives of the metric in the point, which the numpy
    # backend cannot autodiff; the injectivity radius has no formula.
    "christoffels_vec",
    "geodesic_equation_vec",
    "inner_product_derivative_matrix_vec",
    "riemann_tensor_vec",
    "curvature_vec",
    "ricci_tensor_vec",
    "directional_curvature_vec",
    "curvature_derivative_vec",
    "directional_curvature_derivative_vec",
    "covariant_riemann_tensor_vec",
    "covariant_riemann_tensor_is_skew_symmetric_1",
    "covariant_riemann_tensor_is_skew_symmetric_2",
    "covariant_riemann_tensor_bianchi_identity",
    "covariant_riemann_tensor_is_interchange_symmetric",
    "sectional_curvature_vec",
    "scalar_curvature_vec",
    "injectivity_radius_vec",
)

_NO_PARALLEL_TRANSPORT = (
    # Only DLNMetric has parallel_transport (a pole ladder); BalancedMetric and Geomstats'
    # QuotientMetric do not.
    "parallel_transport_ivp_vec",
    "parallel_transport_bvp_vec",
    "parallel_transport_ivp_transported_is_tangent",
    "parallel_transport_bvp_transported_is_tangent",
    "parallel_transport_ivp_norm",
    "parallel_transport_bvp_norm",
)


class BalancedSpaceTestData(LevelSetTestData):
    tolerances = {"projection_belongs": {"atol": 1e-10}}


class DLNMetricTestData(RiemannianMetricTestData):
    skips = _NO_CONNECTION_TENSORS
    tolerances = {
        # log is converged to 1e-11 in the end point; the rest is integrator round-off.
        "exp_after_log": {"atol": 1e-9},
        "log_after_exp": {"atol": 1e-8},
        "dist_is_log_norm": {"atol": 1e-9},
        "geodesic_boundary_points": {"atol": 1e-9},
        "geodesic_bvp_reverse": {"atol": 1e-8},
        # Pole ladder with 4 rungs: second order, norm kept to ~1e-5 at these lengths.
        "parallel_transport_ivp_norm": {"atol": 1e-4},
        "parallel_transport_bvp_norm": {"atol": 1e-4},
    }


class BalancedMetricTestData(RiemannianMetricTestData):
    skips = _NO_CONNECTION_TENSORS + _NO_PARALLEL_TRANSPORT
    tolerances = {
        "exp_after_log": {"atol": 1e-9},
        "log_after_exp": {"atol": 1e-8},
        "dist_is_log_norm": {"atol": 1e-9},
        "geodesic_boundary_points": {"atol": 1e-9},
        "geodesic_bvp_reverse": {"atol": 1e-8},
        "geodesic_bvp_belongs": {"atol": 1e-9},
        "geodesic_ivp_belongs": {"atol": 1e-9},
        "exp_belongs": {"atol": 1e-9},
        "log_is_tangent": {"atol": 1e-9},
    }


class QuotientMetricTestData(RiemannianMetricTestData):
    skips = (
        _NO_CONNECTION_TENSORS
        + _NO_PARALLEL_TRANSPORT
        + (
            # Geomstats' QuotientMetric has no metric matrix (it works through lifts);
            # DLNMetric, which it equals, has one and is tested with it.
            "metric_matrix_vec",
            "metric_matrix_is_spd",
            "cometric_matrix_vec",
            "inner_coproduct_vec",
        )
    )
    tolerances = DLNMetricTestData.tolerances


class DLNBundleTestData(FiberBundleTestData):
    skips = (
        # The O'Neill tensor A and its derivative are not implemented (Geomstats raises
        # NotImplementedError in FiberBundle); nothing in the quotient metric we use needs them.
        "integrability_tensor_vec",
        "integrability_tensor_derivative_vec",
    )
    tolerances = {"log_after_align_is_horizontal": {"atol": 1e-8}}

"""The membership test every dlnmanifolds Pymanopt manifold exposes."""

from __future__ import annotations


class CheckedMembership:
    """``belongs`` from ``check_point``: the conformance suite and users ask the
    same question, and ``check_point`` says why a point is off the manifold."""

    def check_point(self, point, atol: float = 1e-10):  # pragma: no cover - abstract
        raise NotImplementedError

    def belongs(self, point, atol: float = 1e-10) -> bool:
        """True when ``point`` lies on the manifold (see ``check_point``)."""
        try:
            self.check_point(point, atol)
        except (ValueError, TypeError):
            return False
        return True

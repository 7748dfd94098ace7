"""What a model costs: the dispatch-level recorder, the formula registry, layer kinds, peers' counters."""

from .formulas import Cost, register, registered_ops
from .profile import profile
from .result import Layer, ProfileResult, Totals

__all__ = ["Cost", "Layer", "ProfileResult", "Totals", "profile", "register", "registered_ops"]

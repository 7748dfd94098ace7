"""What a model costs: the dispatch-level recorder, the formula registry, layer kinds, peers' counters."""

from .formulas import Args, Cost, arguments, register, registered_ops
from .profile import profile
from .recorder import Observer, OpCall
from .result import Layer, ProfileResult, Totals

__all__ = ["Args", "Cost", "arguments", "Layer", "Observer", "OpCall", "ProfileResult", "Totals", "profile", "register", "registered_ops"]

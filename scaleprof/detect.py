"""Which verb wrote a JSON result, told from its keys (the `--json` contracts in docs/design.md)."""

from __future__ import annotations

from .errors import ScaleprofError


def result_kind(obj) -> str | None:
    """'profile' | 'bench' | 'compare' | 'compare_saved' | 'scale' | 'check' | 'baseline' | 'zoo', or None if
    none fits."""
    if isinstance(obj, list):
        if obj and all(isinstance(r, dict) and "name" in r and "family" in r for r in obj):
            return "zoo"
        return None
    if not isinstance(obj, dict):
        return None
    keys = set(obj)
    if "scaleprof_baseline" in keys:
        return "baseline"
    if {"totals", "by_kind"} <= keys:
        return "profile"
    if {"a", "b", "ratio", "p_value"} <= keys:
        return "compare"
    if {"rows", "same_environment"} <= keys:  # compare on two saved bench results
        return "compare_saved"
    if {"candidates"} <= keys and ("family" in keys or "phi" in keys):
        return "scale"
    if {"verdict", "checks"} <= keys:
        return "check"
    if {"env", "results"} <= keys and isinstance(obj["results"], list):
        return "bench"
    return None


def require_kind(obj, source: str,
                 allowed=("profile", "bench", "compare", "compare_saved", "scale", "check", "zoo")) -> str:
    kind = result_kind(obj)
    if kind is None:
        what = f"keys {', '.join(sorted(obj)[:8])}" if isinstance(obj, dict) else type(obj).__name__
        raise ScaleprofError(f"{source}: not a scaleprof {', '.join(allowed[:-1])} or {allowed[-1]} result "
                             f"({what})")
    if kind not in allowed:
        raise ScaleprofError(f"{source}: a {kind} file, which this command does not take "
                             f"(it takes {', '.join(allowed)})")
    return kind

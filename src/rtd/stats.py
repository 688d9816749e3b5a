"""Statistics for the report's tables: multiple-comparison correction."""
from __future__ import annotations


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (step-down; None = no test, left out of the family and returned as None).

    Sorted ascending, p_(i) becomes max_{j <= i} min(1, (m - j + 1) p_(j)), m the number of tests; reject at level
    a where the adjusted p is <= a. This controls the family-wise error rate without assuming independence."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m, out, running = len(tested), list(pvalues), 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out

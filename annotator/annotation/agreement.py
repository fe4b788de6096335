"""Agreement statistics, computed in one streaming pass (consensus labels live in core.labels, shared with
the worker)."""

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from core.labels import Consensus, consensus

__all__ = ["AlphaAccumulator", "Consensus", "cohen_kappa", "consensus"]


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two label sequences over the same posts (two annotators, or two model versions):
    agreement beyond chance. None when undefined: no posts, or both used one and the same label throughout
    while disagreeing (which cannot happen); 1.0 when both used one label and agree."""
    n = len(first)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(first, second, strict=True)) / n
    counts_first, counts_second = Counter(first), Counter(second)
    expected = sum(counts_first[c] * counts_second[c] for c in counts_first.keys() | counts_second.keys()) / (
        n * n
    )
    if expected == 1.0:
        return 1.0 if observed == 1.0 else None
    return (observed - expected) / (1 - expected)


@dataclass
class AlphaAccumulator:
    """Krippendorff's alpha for nominal data, accumulated post by post.

    Only posts with two or more labels are pairable; alpha = 1 - D_o / D_e over the coincidence matrix."""

    coincidences: defaultdict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    units: int = 0

    def add(self, labels: Mapping[str, int] | Iterable[str]) -> None:
        counts = Counter(labels) if not isinstance(labels, Mapping) else Counter(dict(labels))
        m = sum(counts.values())
        if m < 2:
            return
        self.units += 1
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_c - 1) if c == k else n_c * n_k
                self.coincidences[(c, k)] += pairs / (m - 1)

    def alpha(self) -> float | None:
        n = sum(self.coincidences.values())
        if n <= 1:
            return None
        marginals: defaultdict[str, float] = defaultdict(float)
        for (c, _k), value in self.coincidences.items():
            marginals[c] += value
        observed = sum(v for (c, k), v in self.coincidences.items() if c != k)
        expected = sum(marginals[c] * marginals[k] for c in marginals for k in marginals if c != k)
        if expected == 0:
            return 1.0 if observed == 0 else None
        return 1.0 - (n - 1) * observed / expected

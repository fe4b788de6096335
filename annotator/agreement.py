"""Consensus labels and agreement statistics, computed in one streaming pass."""

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Consensus:
    label: str | None
    source: str
    """'adjudicated', 'unanimous', 'majority', 'single', 'tie' or 'none'."""
    agreement: float | None
    """Share of annotators that gave the consensus label (None without labels)."""


def consensus(labels: Iterable[str], adjudicated: str | None = None) -> Consensus:
    """The adjudicated label if any, else the majority label; a tie gives no label."""
    counts = Counter(labels)
    total = sum(counts.values())
    if adjudicated is not None:
        return Consensus(adjudicated, "adjudicated", counts[adjudicated] / total if total else None)
    if not total:
        return Consensus(None, "none", None)
    ranked = counts.most_common(2)
    top_label, top_count = ranked[0]
    if len(ranked) > 1 and ranked[1][1] == top_count:
        return Consensus(None, "tie", top_count / total)
    if total == 1:
        return Consensus(top_label, "single", 1.0)
    return Consensus(top_label, "unanimous" if top_count == total else "majority", top_count / total)


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

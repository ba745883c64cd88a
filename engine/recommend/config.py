"""Settings of the hybrid model and the segments, and the weights the tuning may choose.

Apart so that the segmentation (``segments``) and the hybrid (``hybrid``) both
read one config without either importing the other.
"""

from __future__ import annotations

from dataclasses import dataclass

# the weights the tuning may choose, per part; w_collab stays 1 (the scale)
WEIGHT_GRID: dict[str, tuple[float, ...]] = {
    "w_ease": (0.0, 0.5, 1.0),
    "w_trend": (0.0, 0.25, 0.5, 1.0, 1.5),
    "w_segment": (0.0, 0.25, 0.5, 1.0, 1.5, 2.0),
    "w_transfer": (0.0, 0.2, 0.4),
    "w_content": (0.0, 0.1, 0.2),
    "w_popularity": (0.0, 0.1, 0.3),
}


@dataclass(frozen=True)
class PreferenceConfig:
    """Settings of the hybrid model and the segments.

    The ``w_`` weights are the starting point; with ``tune_weights`` (the
    default) each fit chooses them on a validation window of its own history
    (see engine/recommend/hybrid.py). engine/recommend/evaluate.py has the protocol
    that measured this against EASE, item-kNN and popularity.
    """

    half_life_days: float = 90.0
    ease_l2: float = 200.0
    ease_max_items: int = 8000
    knn_neighbours: int = 100
    knn_shrink: float = 10.0
    w_collab: float = 1.0
    w_ease: float = 1.0
    w_trend: float = 0.5
    w_segment: float = 0.25
    w_content: float = 0.1
    w_transfer: float = 0.2
    w_popularity: float = 0.1
    trend_half_life_days: float = 7.0
    text_neighbours: int = 20
    tune_weights: bool = True
    validation_weeks: int = 4
    validation_customers: int = 1500
    temperature: float | None = None  # None: fitted with the weights (hybrid.py)
    new_candidates: int = 50  # the hybrid's best new products the next-purchase list weighs
    # the GRU over each customer's baskets (engine/recommend/sequence.py) as one more
    # part of the next-purchase list: "auto" keeps it where it wins the validation
    # window, "on" always, "off" never trains it
    sequence: str = "auto"
    # its training budget: Online Retail's and Ta-Feng's GRUs stop early (11 s, 19 s);
    # a 92k-product shop's runs to the budget
    sequence_seconds: float = 30.0
    n_segments: int | None = None  # None: the k chosen by held-out purchases (segments.py)
    # the analyst's bounds on that choice
    k_range: tuple[int, int] = (2, 10)
    svd_components: int = 32
    chunk_size: int = 2048
    device: str | None = None

    def __post_init__(self) -> None:
        if self.temperature is not None and not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 (or None: fitted), got {self.temperature}")
        if not 0.0 <= self.w_ease <= 1.0:
            raise ValueError(f"w_ease must be in [0, 1], got {self.w_ease}")
        lo, hi = self.k_range
        if not 2 <= lo <= hi:
            raise ValueError(f"k_range must satisfy 2 <= low <= high, got {self.k_range}")
        if self.sequence not in ("auto", "on", "off"):
            raise ValueError(f"sequence must be 'auto', 'on' or 'off', got {self.sequence!r}")
        if not self.sequence_seconds > 0:
            raise ValueError(f"sequence_seconds must be > 0, got {self.sequence_seconds}")
        if not isinstance(self.new_candidates, int) or self.new_candidates < 1:
            raise ValueError(f"new_candidates must be an integer >= 1, got {self.new_candidates!r}")
        if self.validation_weeks < 1:
            raise ValueError(f"validation_weeks must be >= 1, got {self.validation_weeks}")

    def weights(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in WEIGHT_GRID}

"""The dashboard's colours, one place for every figure."""

ACCENT = "#2f6f8f"  # what the analyst is looking at: the bundle, the recommended price
SECOND = "#d9822b"  # its counterpart: partners outside the bundle, the chosen point
MUTED = "#b8c4cc"  # context: other edges, the revenue line

"""Balance: per-entry probabilities and seeded keep draws (draws), and what each threshold t gives (thresholds)."""

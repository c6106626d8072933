"""Balance: the entry counts and their per-language vectors (counts), per-entry probabilities and seeded keep draws
(draws), t of each list and what each threshold gives (thresholds), the balance stage on Spark (spark)."""

"""AI-training opt-outs: the signals a page declares (signals) and the pairs they set apart in a root (tables)."""

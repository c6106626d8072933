"""The metadata: loading entry lists (lists) and building them from WordNet, Wikipedia and pageviews (build)."""

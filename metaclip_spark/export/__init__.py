"""What leaves a finished root: flat files for a training pipeline (files) and online balancing (online)."""

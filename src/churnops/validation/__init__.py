"""Checks a trained model must pass before deployment: segments, fairness, behaviour, robustness."""

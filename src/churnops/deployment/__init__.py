"""Deployment strategies: a challenger on live traffic (shadow, canary, blue-green), judged by ML
quality, stepped forward or rolled back on its own. Plain functions over the prediction store."""

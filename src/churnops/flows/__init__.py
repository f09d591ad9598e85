"""Prefect 3 flows over the core's plain functions (the optional `flows` extra).

`training` (one task per training stage), `monitoring` (check a window), `retraining` (the
continuous-training loop) and `serve` (them as deployments with the schedules of params.yaml).
Only this package and `churnops flows` import Prefect; the API and `churnops serve` never do.
"""

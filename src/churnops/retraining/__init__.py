"""Continuous training: the policy, training data, the production gate, the loop, rollback.

Plain functions over the store and the registry; Prefect is never imported here (`churnops.flows`
wraps these functions as tasks, `churnops retrain` calls them directly).
"""

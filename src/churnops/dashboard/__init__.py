"""churnops.dashboard"""

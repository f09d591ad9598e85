"""churnops.api"""

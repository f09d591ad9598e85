"""churnops.cli"""

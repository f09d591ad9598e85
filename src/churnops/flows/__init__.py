"""churnops.flows"""

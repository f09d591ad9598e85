"""churnops.store"""

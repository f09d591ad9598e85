"""churnops.modeling"""

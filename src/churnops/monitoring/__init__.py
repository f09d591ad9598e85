"""churnops.monitoring"""

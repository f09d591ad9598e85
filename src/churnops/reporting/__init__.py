"""churnops.reporting"""

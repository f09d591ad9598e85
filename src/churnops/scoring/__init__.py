"""churnops.scoring"""

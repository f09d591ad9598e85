"""churnops: the machine-learning lifecycle for churn and customer-risk prediction."""

__version__ = "0.1.0"

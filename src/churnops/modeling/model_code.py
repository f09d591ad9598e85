"""The churnops pyfunc model as MLflow's models-from-code script (never imported by churnops).

`log_churn_model` logs this file instead of a CloudPickle of a `ChurnModel`: loading the model
with `mlflow.pyfunc.load_model` runs these lines (with the model's own copy of churnops on the
path) and never unpickles code objects. Everything the model knows is in its bundle artifact.
"""

import mlflow.models

from churnops.modeling.pyfunc import ChurnModel

mlflow.models.set_model(ChurnModel())

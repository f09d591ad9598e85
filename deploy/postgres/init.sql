-- The MLflow server keeps its tracking/registry tables apart from the prediction store.
CREATE DATABASE mlflow OWNER churnops;

-- The MLflow server keeps its tracking/registry tables apart from the prediction store, and
-- the Prefect server (compose profile `flows`) its state.
CREATE DATABASE mlflow OWNER churnops;
CREATE DATABASE prefect OWNER churnops;

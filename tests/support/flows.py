"""A params.yaml for flow tests: everything under one folder, tiny training, small gate."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_params(home: Path) -> Path:
    params = {
        "home": str(home),
        "tracking_uri": f"sqlite:///{home / 'mlflow.db'}",
        "database_url": f"sqlite:///{home / 'predictions.db'}",
        "training": {"budget_minutes": 0.01, "candidates": ["xgboost"], "cv_folds": 3},
        "monitoring": {"reports_dir": str(home / "reports"), "min_rows": 100},
        "retraining": {
            "gate": {"bootstrap_samples": 100},
            "triggers": {"max_champion_age_days": None, "new_labelled_share": None},
        },
    }
    path = home / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path

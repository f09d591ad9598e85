"""Training the challenger: build the data, run the training use case without its own gate."""

from __future__ import annotations

from dataclasses import dataclass

from churnops.modeling.train import TrainingOutcome
from churnops.retraining.context import LoopContext
from churnops.retraining.data import TrainingData, build_training_data


@dataclass(frozen=True)
class Challenger:
    outcome: TrainingOutcome
    data: TrainingData

    @property
    def version(self) -> str:
        return self.outcome.version


def training_data(ctx: LoopContext) -> TrainingData:
    """The configured table plus the labelled production rows of the data window."""
    from churnops.data.load import load_training_table

    table, schema = load_training_table(ctx.settings.data)
    return build_training_data(
        table,
        schema,
        ctx.store,
        data_settings=ctx.settings.data,
        settings=ctx.settings.retraining,
        now=ctx.now,
    )


def train_on(ctx: LoopContext, data: TrainingData) -> Challenger:
    """A new registered version (alias `challenger`); the champion is left alone."""
    from churnops.modeling.tracking import ensure_experiment
    from churnops.modeling.train import run_training

    experiment_id = ensure_experiment(ctx.client, ctx.settings)
    outcome = run_training(
        data.frame,
        schema=data.schema,
        settings=ctx.settings,
        client=ctx.client,
        experiment_id=experiment_id,
        gate=False,
        production=data.production_rows(),
        production_frame=data.production,  # kept with the run, so `churnops verify` can rebuild it
    )
    ctx.client.set_tag(outcome.run_id, "churnops.kind", "retraining")
    ctx.client.log_dict(outcome.run_id, data.evidence(), "retraining/data.json")
    return Challenger(outcome=outcome, data=data)

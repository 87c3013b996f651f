"""The stages of a run, in order, and how many progress steps each one counts.

The one list is `videojob.api.models.Stage` (status.currentStage, DESIGN.md); the pipeline's
stages are its members between Queued and Done. The status tracker lists them, progress counts
their steps, and the graph maps each node to one of them.
"""

from __future__ import annotations

from typing import Iterable

from videojob.api.models import Stage

PIPELINE_STAGES: tuple[Stage, ...] = tuple(s for s in Stage if s not in (Stage.Queued, Stage.Done))
# Stages only some runs go through (Narrating: when the job has narration); the others always run.
OPTIONAL_STAGES = frozenset({Stage.Narrating})
# Stages that count one progress step per scene; every other stage counts one step.
PER_SCENE_STAGES = frozenset({Stage.Narrating, Stage.GeneratingCode, Stage.Rendering})


def run_stages(*optional: Stage) -> list[Stage]:
    """The stages of a run that also goes through the given optional ones, in run order."""
    return [s for s in PIPELINE_STAGES if s not in OPTIONAL_STAGES or s in optional]


def step_count(stages: Iterable[Stage | str], scenes: int) -> int:
    """How many progress steps a run through `stages` with `scenes` scenes has."""
    return sum(scenes if Stage(s) in PER_SCENE_STAGES else 1 for s in stages)

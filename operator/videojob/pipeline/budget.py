"""Per-job caps on what a run spends (scenes, LLM tokens, speech characters), checked as it goes.

The operator's settings set the caps (`videojob.policy.JobCaps`); the run's usage counters are
the same dict that becomes `status.usage`, so what stopped a run is what its status shows. A
cap is checked before spending (no call is made once the tokens are used up, no speech is
synthesised beyond the characters left) and after each model answer (an answer that crosses
the cap ends the run: the tokens are spent, the next call is not made).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from videojob import metrics, policy
from videojob.pipeline.errors import PipelineError


class BudgetExceeded(PipelineError):
    """A per-job cap was reached: permanent (a retry would spend the same), reason PolicyDenied."""

    reason = policy.REASON

    def __init__(self, denial: policy.Denial, stage: str | None = None):
        super().__init__(str(denial), stage=stage)
        self.denial = denial


@dataclass
class UsageBudget:
    caps: policy.JobCaps = field(default_factory=policy.JobCaps)

    @property
    def unlimited(self) -> bool:
        return self.caps == policy.JobCaps()

    # ----------------------------------------------------------------------------- tokens

    def tokens(self, usage: dict[str, int]) -> int:
        return int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))

    def before_llm_call(self, usage: dict[str, int], stage: str | None = None) -> None:
        """Raise BudgetExceeded when the job has no tokens left for another call."""
        cap = self.caps.max_tokens
        if cap is not None and self.tokens(usage) >= cap:
            self._deny(self._tokens_denial(usage, cap, "no tokens are left for another model call"), stage)

    def after_llm_call(self, usage: dict[str, int], stage: str | None = None) -> None:
        """Raise BudgetExceeded when the answer just counted took the job past its token cap."""
        cap = self.caps.max_tokens
        if cap is not None and self.tokens(usage) > cap:
            self._deny(self._tokens_denial(usage, cap, "the run was stopped"), stage)

    def _tokens_denial(self, usage: dict[str, int], cap: int, what: str) -> policy.Denial:
        return policy.Denial(
            "status.usage", policy.RULE_TOKENS,
            f"{self.tokens(usage)} LLM tokens (prompt + completion) reached the operator's "
            f"VIDEOJOB_MAX_TOKENS_PER_JOB ({cap}); {what}",
        )

    # ----------------------------------------------------------------------------- scenes

    def check_scenes(self, scenes: int, field_name: str = "spec", stage: str | None = "Planning") -> None:
        denial = policy.scenes_denial(scenes, self.caps.max_scenes, field_name)
        if denial is not None:
            self._deny(denial, stage)

    # -------------------------------------------------------------------------------- TTS

    def before_tts(self, usage: dict[str, int], characters: int, stage: str | None = "Narrating") -> None:
        """Raise BudgetExceeded when synthesising `characters` more would pass the cap."""
        cap = self.caps.max_tts_characters
        spent = int(usage.get("tts_characters", 0))
        if cap is not None and spent + characters > cap:
            self._deny(policy.Denial(
                "status.usage.ttsCharacters", policy.RULE_TTS,
                f"{spent + characters} characters of narration exceed the operator's "
                f"VIDEOJOB_MAX_TTS_CHARACTERS_PER_JOB ({cap}); shorten the narration",
            ), stage)

    def _deny(self, denial: policy.Denial, stage: str | None) -> None:
        metrics.record_policy_denial(denial.rule)
        raise BudgetExceeded(denial, stage)

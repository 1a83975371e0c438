"""How texts are generated and localized in resumable chunks: what `evaluate` and `evaluate-grpo` share (its own
module, so that the GRPO stages do not depend on the evaluation rows' config)."""

from __future__ import annotations

from pydantic import Field

from talking_points.pipeline.config import Section
from talking_points.pipeline.models.decoding import DecodingConfig
from talking_points.pipeline.precision import Precision

__all__ = ["ScoringConfig"]


class ScoringConfig(Section):
    """What `evaluate` and `evaluate-grpo` share: how texts are generated and localized, in resumable chunks."""

    generation: DecodingConfig = DecodingConfig()
    localizer_batch_size: int = Field(64, ge=1, description="texts per batch of the localizer")
    chunk_size: int = Field(128, ge=1, description="rows computed (and kept for resuming) at a time")
    limit: int | None = Field(None, ge=1, description="score only the first N test rows (null: all)")
    seed: int = Field(0, description="seed of the chance predictor and of the example choice")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (null: torch's default)")
    mixed_precision: Precision = Field(Precision.auto, description="bf16: the models run under "
                                       "torch.autocast(bfloat16), as they were trained; fp32: no autocast; auto: "
                                       "bf16 where the device runs it natively, else fp32 (precision.resolve)")

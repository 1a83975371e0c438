"""How the Point Descriptor generates: the decoding settings of every describing stage (a light module: the
configs that hold it do not import the models)."""

from __future__ import annotations

from pydantic import Field

from talking_points.pipeline.config import Section

__all__ = ["DecodingConfig"]


class DecodingConfig(Section):

    max_new_tokens: int = Field(96, ge=1)
    do_sample: bool = False
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    num_beams: int = Field(1, ge=1)
    batch_size: int = Field(32, ge=1)

    def generate_kwargs(self, tokenizer) -> dict:
        kw = dict(max_new_tokens=self.max_new_tokens, do_sample=self.do_sample, num_beams=self.num_beams,
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        if self.do_sample:
            kw.update(temperature=self.temperature, top_p=self.top_p)
        return kw

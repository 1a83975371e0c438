"""The Point Localizer: image + description -> pixel (paper §3.3).

One forward pass over "<image>\\nPlease segment region1: {description}\\n<p> keypoint </p> <SEG>"; the last
layer's hidden state at `<SEG>` goes through a text-to-vision projection, then one of two heads
(`LocalizerHead`), each giving normalised (x, y) and trained with MSE:

* `regression` (the paper's): an MLP (512-128-2 in the paper) and a sigmoid;
* `heatmap`: the projected `<SEG>` state is matched against the tower's fine map (a projection of every cell's
  feature plus its 2-D position) as a query, a softmax over the cells gives a heat map, and the point is its
  expectation (soft-argmax). The way OMG-LLaVA's `[SEG]` token reads the pixel decoder's features for masks;
  it lets a small LM point at a part it can name without regressing coordinates from a handful of tokens.
  With `heatmap_dense` every cell's key also carries what the tower segments there (its category and part
  probabilities from the dense heads, a pretrained tower), so the query can match "the dog's left ear" against
  the cells the tower calls dog and ear instead of recovering that from the map's features.
  With `heatmap_regions` every cell's key also carries where it lies in the object and the part the tower
  segments there and where that object lies among the others of its category (`region_keys`: the per-cell form
  of the descriptor's `tower_regions` and `tower_instances`), so "the left dog of the two" and "the top end of
  its tail" are features the query can match, not something the LM must work out from the image tokens.
  With `heatmap_gate` two heads read from the text's tokens (each through its own attention over their
  embeddings and last hidden states) which category and which part the description names
  (`HeatMap.labels`, trained on the rows' own labels by the training's `label_loss`, which reaches the heads
  only), and every cell's logit
  is weighed by the tower's probability of those classes near it (`label_gate`): a description that names
  "the dog's nose" and nothing of where the dog is still puts its mass on what the tower calls dog and nose.
  With `heatmap_instance_gate` two more heads read which instance it names ("the left dog of the two", "the
  rightmost of its four legs": `label_gate.InstanceHeads`), and every cell is weighed by whether the tower's
  object (part) there has that rank among the others (`region_keys.rank_maps`).
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from talking_points.pipeline.models.adaptation import PointModelSettings, adapt_lm, base_lm, decoder_of
from talking_points.pipeline.models.base import PointVLM, VisionFeatures
from talking_points.pipeline.models.descriptor import mlp
from talking_points.pipeline.models.label_gate import LabelGate, TextStates, tower_probs
from talking_points.pipeline.models.point_model import PointModel
from talking_points.pipeline.models.positional import grid_centres, sinusoid_2d
from talking_points.pipeline.models.prompts import position_ids, seg_positions
from talking_points.pipeline.models.region_keys import REGION_KEY_FEATURES, region_key_features

__all__ = ["HeatMap", "HeatmapReadout", "LocalizerConfig", "LocalizerHead", "PointLocalizer", "densest_soft_argmax",
           "grid_shape", "soft_argmax"]


class LocalizerHead(str, Enum):
    regression = "regression"  # MLP + sigmoid on the projected <SEG> state (the paper's)
    heatmap = "heatmap"  # the projected <SEG> state as a query over the tower's fine map, soft-argmax


class HeatmapReadout(str, Enum):
    """How `PointLocalizer.forward` reads the point off a heat map (evaluation mode; training reads the
    expectation, which its losses are written for)."""

    expectation = "expectation"  # the soft-argmax over every cell
    densest = "densest"  # the soft-argmax near the densest cell (`densest_soft_argmax`): one mode of the map


def _unless(default):
    """`exclude_if` for a field added after models were saved: written to point_model.json only when it is not
    `default`, so a folder saved before it existed is what a rerun writes (as transformers' configs save their
    difference from the defaults)."""
    return lambda value: value == default


class LocalizerConfig(PointModelSettings):
    proj_dim: int = Field(256, ge=4, description="output of the text-to-vision projection (heatmap: divisible by 4)")
    head: LocalizerHead = LocalizerHead.regression
    head_dims: list[int] = Field([512, 128], description="regression: hidden sizes of the MLP before the 2 outputs")
    heatmap_stride: int = Field(8, ge=1, description="heatmap: which of the base's strides the query reads")
    heatmap_dense: bool = Field(False, description="heatmap: the keys also read the tower's category and part "
                                "probabilities at every cell (needs a tower with dense heads: pretrain-vision)")
    heatmap_regions: bool = Field(False, description="heatmap: the keys also read where each cell lies in the "
                                  "object and the part the tower segments there, and where that object (part) "
                                  "lies among the others of its category (name) (models.region_keys; needs a "
                                  "tower with dense heads)")
    heatmap_gate: bool = Field(False, description="heatmap: weigh every cell by the tower's probability of the "
                               "category and the part the description names, as two heads read them from the "
                               "description's words (trained by train_localizer.label_loss; needs a tower with "
                               "dense heads)")
    heatmap_instance_gate: bool = Field(
        False, exclude_if=_unless(False),
        description="heatmap_gate: also weigh every cell by whether its object (and its part) is the instance the "
                    "description names among the others of its category (of its name in the object): 'the left "
                    "dog of the two', 'the rightmost of its four legs', as two more heads read it from the words "
                    "(label_gate.InstanceHeads; trained by label_loss on the rows' n_same / order_* columns)")
    heatmap_readout: HeatmapReadout = Field(
        HeatmapReadout.expectation, exclude_if=_unless(HeatmapReadout.expectation),
        description="heatmap: how the point is read off the map at evaluation: expectation (the soft-argmax over "
                    "every cell) or densest (the soft-argmax within heatmap_window cells of the cell with the "
                    "most probability within heatmap_mass_reach cells: one mode where a map with mass on two "
                    "legs or two dogs puts its expectation between them). Training always reads the expectation")
    heatmap_window: int = Field(8, ge=1, exclude_if=_unless(8),
                                description="heatmap_readout densest: the window's reach in cells (8: 17 x 17)")
    heatmap_mass_reach: int = Field(4, ge=0, exclude_if=_unless(4),
                                    description="heatmap_readout densest: the reach in cells over which each "
                                    "cell's probability is summed to find the densest (0: the highest cell)")

    def model_post_init(self, __context) -> None:
        for option in ("heatmap_dense", "heatmap_regions", "heatmap_gate"):
            if getattr(self, option) and self.head is not LocalizerHead.heatmap:
                raise ValueError(f"{option} reads the tower's labels into the heatmap head's keys; head is "
                                 f"{self.head.value!r}: set head: heatmap or {option}: false")
        if self.heatmap_instance_gate and not self.heatmap_gate:
            raise ValueError("heatmap_instance_gate adds the instance heads to the label gate: set heatmap_gate: "
                             "true or heatmap_instance_gate: false")
        if self.heatmap_readout is not HeatmapReadout.expectation and self.head is not LocalizerHead.heatmap:
            raise ValueError(f"heatmap_readout {self.heatmap_readout.value!r} reads a heat map; head is "
                             f"{self.head.value!r}: set head: heatmap or heatmap_readout: expectation")


class HeatMap(NamedTuple):
    """The heatmap head's output before the soft-argmax."""

    logits: torch.Tensor  # (B, S) over the fine map's cells
    centres: torch.Tensor  # (S, 2) the cells' normalised centres
    labels: tuple[torch.Tensor, ...] | None  # heatmap_gate: the text's (category, part) logits, each over the
    # tower's classes with its background first (B, 1 + C); heatmap_instance_gate: then the object's and the part's
    # rank classes (B, RANK_CLASSES); None without the gate


def soft_argmax(logits: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Expected (x, y) (B, 2) under softmax(logits) (B, S) over cells with normalised centres (S, 2)."""
    return torch.softmax(logits.float(), dim=-1) @ centres.float()


def grid_shape(centres: torch.Tensor) -> tuple[int, int]:
    """(h, w) of the row-major grid whose cells have the normalised centres (S, 2)."""
    return len(centres[:, 1].unique()), len(centres[:, 0].unique())


def densest_soft_argmax(logits: torch.Tensor, centres: torch.Tensor, mass_reach: int, window: int) -> torch.Tensor:
    """(B, 2): the soft-argmax within `window` cells of the cell whose neighbourhood (`mass_reach` cells each
    way) holds the most of softmax(logits) (B, S); `mass_reach` 0: the highest cell. Where the map has mass in
    two places the expectation lies between them and this reads the larger one."""
    h, w = grid_shape(centres)
    probs = torch.softmax(logits.float(), dim=-1).view(-1, 1, h, w)
    near = F.avg_pool2d(probs, 2 * mass_reach + 1, stride=1, padding=mass_reach, count_include_pad=False)
    at = near.flatten(1).argmax(-1)  # (B,) the densest cell, row-major
    cells = torch.arange(h * w, device=logits.device)
    inside = (((cells // w)[None] - (at // w)[:, None]).abs() <= window) & (
        ((cells % w)[None] - (at % w)[:, None]).abs() <= window)  # within `window` rows and columns of it
    return soft_argmax(logits.float().masked_fill(~inside, float("-inf")), centres)


class PointLocalizer(PointModel):
    kind = "localizer"
    config_class = LocalizerConfig

    def __init__(self, vlm: PointVLM, cfg: LocalizerConfig):
        super().__init__()
        self.cfg = cfg
        self.vlm = vlm
        d_lm = vlm.config.lm_hidden_size
        self.text2vision = mlp([d_lm, d_lm, cfg.proj_dim], act=nn.ReLU)
        strides = list(vlm.config.strides)
        read = [vlm.config.token_stride]
        if cfg.head is LocalizerHead.regression:
            self.head = mlp([cfg.proj_dim, *cfg.head_dims, 2], act=nn.ReLU)
        elif cfg.head is LocalizerHead.heatmap:
            if cfg.heatmap_stride not in strides:
                raise ValueError(f"localizer heatmap_stride {cfg.heatmap_stride} is not one of the base's strides "
                                 f"{strides}")
            if cfg.proj_dim % 4:
                raise ValueError(f"localizer proj_dim {cfg.proj_dim} must be divisible by 4 for the heatmap head")
            self.key_proj = nn.Conv2d(vlm.config.feature_channels[strides.index(cfg.heatmap_stride)], cfg.proj_dim, 1)
            self.key_pos = nn.Linear(cfg.proj_dim, cfg.proj_dim)
            self.key_dense = (nn.Conv2d(vlm.dense_label_channels("heatmap_dense"), cfg.proj_dim, 1)
                              if cfg.heatmap_dense else None)
            if self.key_dense is not None:  # zero: it adds nothing until trained (a trained localizer gains it
                nn.init.zeros_(self.key_dense.weight)  # by fine-tuning, starting from its own predictions)
                nn.init.zeros_(self.key_dense.bias)
            self.key_regions = None
            if cfg.heatmap_regions:  # zero output until trained, as key_dense
                vlm.require_dense_heads("heatmap_regions")
                self.key_regions = mlp([REGION_KEY_FEATURES, cfg.proj_dim // 2, cfg.proj_dim], act=nn.ReLU)
                nn.init.zeros_(self.key_regions[-1].weight)
                nn.init.zeros_(self.key_regions[-1].bias)
            self.gate = None
            if cfg.heatmap_gate:  # its heads at zero: the same gate on every cell until trained
                vlm.require_dense_heads("heatmap_gate")
                self.gate = LabelGate(d_lm, len(vlm.config.dense_categories), len(vlm.config.dense_parts),
                                      instances=cfg.heatmap_instance_gate)
            read.append(cfg.heatmap_stride)
        else:
            raise ValueError(f"unknown localizer head {cfg.head!r}")
        vlm.vision.requires_grad_(False)
        if cfg.train_vision:  # only the layers below the maps the localizer reads
            for p in vlm.vision.parameters_feeding(tuple(vlm.config.image_size), sorted(set(read))):
                p.requires_grad_(True)
        vlm.lm = adapt_lm(vlm.lm, cfg.lm_adaptation, cfg.lora)
        # the localizer reads hidden states, never the LM's output head: keep it out of the trainable set
        base_lm(vlm.lm).get_output_embeddings().requires_grad_(False)

    def modules_added_to(self, trained: LocalizerConfig) -> tuple[str, ...]:
        """Keys and gate heads on a localizer trained without them (`heatmap_dense`, `heatmap_regions`,
        `heatmap_gate`, `heatmap_instance_gate`): zero until fine-tuned."""
        if self.cfg.head is not LocalizerHead.heatmap:
            return ()
        added = {"key_dense.": self.cfg.heatmap_dense and not trained.heatmap_dense,
                 "key_regions.": self.cfg.heatmap_regions and not trained.heatmap_regions,
                 "gate.": self.cfg.heatmap_gate and not trained.heatmap_gate,
                 "gate.instances.": (self.cfg.heatmap_instance_gate and trained.heatmap_gate
                                     and not trained.heatmap_instance_gate)}
        return tuple(prefix for prefix, new in added.items() if new)

    @property
    def needs_dense(self) -> bool:
        """Whether the model reads the tower's dense logits (`heatmap_dense`, `heatmap_regions`, `heatmap_gate`)."""
        return self.cfg.head is LocalizerHead.heatmap and (self.cfg.heatmap_dense or self.cfg.heatmap_regions
                                                           or self.cfg.heatmap_gate)

    def vision_features(self, images: torch.Tensor) -> VisionFeatures:
        return self.vlm.vision_features(images, with_dense=self.needs_dense)

    def forward(self, images: torch.Tensor | None, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                vision: VisionFeatures | None = None) -> torch.Tensor:
        """Predicted normalised (x, y) per row, (B, 2) in (0, 1); images (or `vision`) as in
        `PointDescriptor.embed_prompt`."""
        query, vision, words = self._seg_query(images, input_ids, attention_mask, vision)
        if self.cfg.head is LocalizerHead.regression:
            return torch.sigmoid(self.head(query).float())
        elif self.cfg.head is LocalizerHead.heatmap:
            return self.read_point(self._heat_map(query, vision, words))
        else:
            raise ValueError(f"unknown localizer head {self.cfg.head!r}")

    def read_point(self, heat: HeatMap) -> torch.Tensor:
        """(B, 2): the point of a heat map as `heatmap_readout` says in evaluation mode, its expectation in
        training mode (the losses are written for it)."""
        readout = HeatmapReadout.expectation if self.training else self.cfg.heatmap_readout
        if readout is HeatmapReadout.expectation:
            return soft_argmax(heat.logits, heat.centres)
        elif readout is HeatmapReadout.densest:
            return densest_soft_argmax(heat.logits, heat.centres, self.cfg.heatmap_mass_reach,
                                       self.cfg.heatmap_window)
        else:
            raise ValueError(f"unknown heatmap readout {readout!r}")

    def heat(self, images: torch.Tensor | None, input_ids: torch.Tensor, attention_mask: torch.Tensor,
             vision: VisionFeatures | None = None) -> HeatMap:
        """The heatmap head's heat map before the soft-argmax (what `forward` takes the expectation of), with
        the gate's label logits under `heatmap_gate`."""
        if self.cfg.head is not LocalizerHead.heatmap:
            raise ValueError(f"the {self.cfg.head.value!r} head has no heat map (head: heatmap has)")
        return self._heat_map(*self._seg_query(images, input_ids, attention_mask, vision))

    def _seg_query(self, images: torch.Tensor | None, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   vision: VisionFeatures | None) -> tuple[torch.Tensor, VisionFeatures, TextStates | None]:
        """The projected `<SEG>` state of each row (B, proj_dim), the tower's features it read, and the text's
        input embeddings and last hidden states (what the label gate's heads read: the words that name the
        category and the part; None without `heatmap_gate`)."""
        if vision is None:
            vision = self.vision_features(images)
        embeds = self.vlm.embed(input_ids, self.vlm.image_tokens(vision.maps))
        hidden = decoder_of(self.vlm.lm)(
            inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids(attention_mask)
        ).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        words = None
        if self.cfg.heatmap_gate:  # only the gate's heads read them
            words = TextStates(embeds, hidden, attention_mask.bool() & (input_ids != self.vlm.config.image_token_id))
        return self.text2vision(hidden[rows, seg_positions(input_ids, self.vlm.config.seg_token_id)]), vision, words

    def _heat_map(self, query: torch.Tensor, vision: VisionFeatures, words: TextStates | None) -> HeatMap:
        """The query matched against every cell of the fine map (and gated by the labels it names)."""
        fine = vision.maps[list(self.vlm.config.strides).index(self.cfg.heatmap_stride)]
        h, w = fine.shape[-2:]
        centres = grid_centres(h, w, fine.device)
        keys = self.key_proj(fine.to(query.dtype)).flatten(2).transpose(1, 2)  # (B, S, D)
        keys = keys + self.key_pos(sinusoid_2d(centres, keys.shape[-1]).to(keys.dtype))
        if self.key_dense is not None:
            keys = keys + self.key_dense(self._dense_probs(vision, (h, w)).to(keys.dtype)).flatten(2).transpose(1, 2)
        if self.key_regions is not None:
            regions = region_key_features(*vision.dense_logits("heatmap_regions"), (h, w))
            keys = keys + self.key_regions(regions.flatten(2).transpose(1, 2).to(keys.dtype))
        logits = (keys @ query.unsqueeze(-1)).squeeze(-1) / keys.shape[-1] ** 0.5
        if self.gate is None:
            return HeatMap(logits, centres, None)
        gate, labels = self.gate(words, *vision.dense_logits("heatmap_gate"), (h, w))
        return HeatMap(logits + gate.to(logits.dtype), centres, labels)

    @staticmethod
    def _dense_probs(vision: VisionFeatures, size: tuple[int, int]) -> torch.Tensor:
        """The tower's category and part probabilities (B, C_cat + C_part, h, w) on the heatmap's grid."""
        return torch.cat([tower_probs(t, size) for t in vision.dense_logits("heatmap_dense")], 1)

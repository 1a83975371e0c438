"""The localizer's label gate: the heat map weighed by the tower's segmentation of what the description names.

Two linear heads read which category and which part the description names (q(c | text), over the tower's dense
classes with the background first; trained on the rows' own labels by `train_localizer.label_loss`). Each reads
the description's tokens through its own attention (`attention_pool`), and every token as its input embedding
(the word itself, the same wherever a style puts it) beside its last hidden state (the word in context: "the
horse's four legs toward the right part of its body" names the legs, not the body). Every heat-map cell then
gains, for each of the two,

    strength * log(sum_c q(c | text) p(c | near the cell) + GATE_FLOOR)

with p the tower's class probabilities max-pooled over `GATE_REACH` cells and renormalised (`gate_map`): the heat
map becomes a product of experts with the tower's segmentation, so "the dog's nose", with nothing of where the
dog is, still puts its mass on what the tower calls dog and nose. The heads start at zero, where q is uniform and
the gate adds the same number to every cell: a trained localizer gains the gate by fine-tuning, starting from its
own predictions; the strengths (one per head, from 1) let the training weigh each gate.

With `instances` (`heatmap_instance_gate`) two more heads read which instance of the category, and which of the
parts of that name, the text names, and weigh every cell by whether the tower's region there has that rank
(`InstanceHeads`).

The heads' label cross-entropy reaches the heads only (they read the words detached for it); the localization
loss reaches the LM through the gate as through the keys. Held-out terse / in-style mPCK of the robust localizer
(README): heads on the `<SEG>` query with the cross-entropy flowing into it, 67.6 in style (no gate: 76.8);
detached, 56.9 / 79.1; the hidden states max-pooled, 58.8 / 85.5 (the heads named the right category for 49% of
the GT texts, 28% of the terse ones); attention-pooled hidden states, 72.5 / 88.9 (92%, 55%: "The mane of the
horse" read as a dog, the training texts naming the animal first); attention-pooled embeddings and hidden
states, 80.4 / 90.2 (100%, 100%).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from talking_points.pipeline.models.region_keys import RANK_CLASSES, rank_maps

__all__ = ["GATE_FLOOR", "GATE_REACH", "InstanceHeads", "LabelGate", "TextStates", "attention_pool",
           "attention_weights", "gate_map", "tower_probs"]

#: added to the gate's probability before its log: a cell the tower is sure is something else loses ~9 nats, not all
GATE_FLOOR = 1e-4
#: the gate reads the largest probability of each class within this many cells of a cell (a max-pool): keypoints
#: lie on outlines, where the tower's stride-4 map often says background or the next part; the keys place the point
GATE_REACH = 2
#: the instance gate's floor: the tower's regions miss the named instance's rank at a quarter of the keypoints
#: of a scene with several (touching instances, stray cells), so a cell without it loses ~3 nats, not ~9
INSTANCE_FLOOR = 0.05
#: the instance heads read the tokens within this many of the words the category (part) head reads
NOUN_REACH = 5
#: the weight (before the softmax's log) left to a token further away: it can still be read, hardly
NOUN_FLOOR = 1e-4


def tower_probs(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, *size) float32: the tower's class probabilities from its (B, C, h, w) logits, averaged onto `size`
    when the grids differ (the dense heads run at the finest level)."""
    probs = torch.softmax(logits.float(), dim=1)
    if probs.shape[-2:] != tuple(size):
        probs = F.adaptive_avg_pool2d(probs, size)
    return probs


def gate_map(logits: torch.Tensor, size: tuple[int, int], reach: int = GATE_REACH) -> torch.Tensor:
    """(B, C, *size) float32: `tower_probs`, each cell taking the largest of every class within `reach` cells,
    renormalised over the classes (a cell on a dog's outline reads about half "dog", half background; a
    distribution again, so uniform heads give every cell the same gate)."""
    probs = tower_probs(logits, size)
    if reach:
        probs = F.max_pool2d(probs, 2 * reach + 1, stride=1, padding=reach)
        probs = probs / probs.sum(dim=1, keepdim=True)
    return probs


class TextStates(NamedTuple):
    """What the gate's heads read of a batch of descriptions: the LM's input embeddings (B, T, D: each word by
    itself, the same wherever a style puts it), its last hidden states (B, T, D: each word in its context) and
    which tokens are the description's text (B, T) bool (the image tokens and the padding are not)."""

    embeds: torch.Tensor
    hidden: torch.Tensor
    text: torch.Tensor

    def features(self) -> torch.Tensor:
        """(B, T, 2 D) float32: both, each layer-normalised (without weights) so that neither's scale decides
        what the heads read (the tiny LM's embeddings are ~30 times smaller than its hidden states)."""
        return torch.cat([F.layer_norm(t.float(), t.shape[-1:]) for t in (self.embeds, self.hidden)], dim=-1)


def attention_weights(text: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """(B, T, K): for each of the K columns of `scores` (B, T, K), its softmax over the text tokens (`text` (B, T)
    bool; the others get no weight)."""
    return torch.softmax(scores.float().masked_fill(~text.unsqueeze(-1), float("-inf")), dim=1)


def attention_pool(features: torch.Tensor, text: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """(B, K, F): for each of the K columns of `scores` (B, T, K), the `attention_weights`-weighted mean of the
    (B, T, F) `features` over the text tokens."""
    return _pool(features, attention_weights(text, scores))


def _pool(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return torch.einsum("btk,btf->bkf", weights, features.float())


def _log_gate(named: torch.Tensor, maps: torch.Tensor, strength: torch.Tensor, floor: float) -> torch.Tensor:
    """(B, S): `strength` * log(sum_c q(c | text) maps[c] + `floor`) for a head's `named` logits (B, C) over
    per-cell maps (B, C, S)."""
    mixed = torch.einsum("bc,bcs->bs", torch.softmax(named.float(), dim=-1), maps)
    return strength * torch.log(mixed + floor)


class InstanceHeads(nn.Module):
    """Which instance the description names: two heads over the rank classes (`region_keys.RANK_LAYOUT`: the
    only one, or the k-th of n from one end along left-right, top-bottom or size: "the left dog of the two", "the
    second of the three bottles from the right"), one for the object among the others of its category and one for
    the part among the others of its name in the object. Each reads the text through its own attention as
    `LabelGate`'s heads do, near the words its category (part) head reads (`NOUN_REACH`). Every cell then gains
    `strength * log(sum_r q(r | text) [the cell holds rank class r] + INSTANCE_FLOOR)`, with the tower's regions
    ranked as the annotations rank instances (`region_keys.rank_maps`, which falls back on shares of the class's
    cells where touching instances merge): "the left dog of the two" puts the mass on one dog where the category
    gate puts it on both. The heads start at zero (q uniform) and learn from `train_localizer.label_loss`'s
    partial-label term (the classes the row's instance has: `steps.rank_label_loss`)."""

    def __init__(self, reads: int):
        super().__init__()
        self.attend = nn.Linear(reads, 2, bias=False)
        self.object = nn.Linear(reads, RANK_CLASSES)
        self.part = nn.Linear(reads, RANK_CLASSES)
        for layer in (self.attend, self.object, self.part):
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        self.strength = nn.Parameter(torch.ones(2))

    def named(self, features: torch.Tensor, text: torch.Tensor, nouns: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The (object, part) rank-class logits (B, RANK_CLASSES) of the text's `TextStates.features`, each head
        reading the tokens within `NOUN_REACH` of those the category (part) head reads, `nouns` (B, T, 2) its
        attention weights: the words that say which instance stand by the noun ("the leftmost of the four lamps",
        "the first dog from the left"), where a position clause's "bottom end of" does not."""
        near = F.max_pool1d(nouns.detach().transpose(1, 2), 2 * NOUN_REACH + 1, stride=1, padding=NOUN_REACH)
        near = (near / near.amax(-1, keepdim=True).clamp_min(1e-12)).transpose(1, 2)
        pooled = attention_pool(features, text, self.attend(features) + torch.log(near.clamp_min(NOUN_FLOOR)))
        return self.object(pooled[:, 0]), self.part(pooled[:, 1])


class LabelGate(nn.Module):
    """The category and part heads on the text's attention-pooled tokens and the per-cell log-gate they give
    (module docstring); with `instances`, also `InstanceHeads`. `lm_dim`: the LM's hidden size (its embeddings'
    too)."""

    def __init__(self, lm_dim: int, n_categories: int, n_parts: int, instances: bool = False):
        super().__init__()
        reads = 2 * lm_dim  # `TextStates.features`: the embeddings and the hidden states side by side
        self.attend = nn.Linear(reads, 2, bias=False)  # one score per token for each head; zero: a mean
        self.category = nn.Linear(reads, n_categories + 1)  # + the background, class 0, as the tower's
        self.part = nn.Linear(reads, n_parts + 1)
        for layer in (self.attend, self.category, self.part):  # zero: uniform over the classes, the same gate
            nn.init.zeros_(layer.weight)                       # on every cell
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        self.strength = nn.Parameter(torch.ones(2))
        self.instances = InstanceHeads(reads) if instances else None

    def named(self, features: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The logits the text's `TextStates.features` (B, T, F) name: category (B, 1 + C_cat) and part
        (B, 1 + C_part), each head reading the `text` tokens (B, T) weighed by its own attention (the tokens that
        name a category, those that name a part); with `instances` then the object's and the part's rank classes
        (B, RANK_CLASSES) each."""
        nouns = attention_weights(text, self.attend(features))
        pooled = _pool(features, nouns)
        named = (self.category(pooled[:, 0]), self.part(pooled[:, 1]))
        if self.instances is not None:
            named = named + self.instances.named(features, text, nouns)
        return named

    def forward(self, states: TextStates, category_logits: torch.Tensor, part_logits: torch.Tensor,
                size: tuple[int, int]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """What the gate adds to each cell's logit (B, h * w) for the text's `states` on the tower's
        (B, C, h', w') category and part logits, and the heads' logits (`named`), read from the states detached:
        `train_localizer.label_loss` on them trains the heads and their attention, not the LM (flowing into the
        `<SEG>` query it cost 9 points in style)."""
        features = states.features()
        labels = self.named(features.detach(), states.text)
        named_for_gate = self.named(features, states.text)  # the localization loss reaches the LM here
        maps = [gate_map(tower, size).flatten(2) for tower in (category_logits, part_logits)]
        strengths = [*self.strength]
        floors = [GATE_FLOOR] * 2
        if self.instances is not None:
            maps += [*rank_maps(category_logits, part_logits, size, GATE_REACH).flatten(3).unbind(1)]
            strengths += [*self.instances.strength]
            floors += [INSTANCE_FLOOR] * 2
        gate = torch.zeros(states.hidden.shape[0], size[0] * size[1], device=states.hidden.device)
        for named, strength, per_cell, floor in zip(named_for_gate, strengths, maps, floors):
            gate = gate + _log_gate(named, per_cell, strength, floor)
        return gate, labels

"""The localizer's label gate: the heat map weighed by the tower's segmentation of what the description names.

Two linear heads read from the description's tokens (the LM's last hidden states, max-pooled over the text: the
words that name them) which category and which part the description names
(q(c | text), over the tower's dense classes with the background first; trained on the rows' own labels by
`train_localizer.label_loss`). Every heat-map cell then gains, for each of the two,

    strength * log(sum_c q(c | text) p(c | near the cell) + GATE_FLOOR)

with p the tower's class probabilities max-pooled over `GATE_REACH` cells and renormalised (`gate_map`): the heat
map becomes a product of experts with the tower's segmentation, so "the dog's nose", with nothing of where the
dog is, still puts its mass on what the tower calls dog and nose. The heads start at zero, where q is uniform and
the gate adds the same number to every cell: a trained localizer gains the gate by fine-tuning, starting from its
own predictions; the strengths (one per head, from 1) let the training weigh each gate.

The heads' label cross-entropy reaches the heads only (they read the words detached for it); the localization
loss reaches the LM through the gate as through the keys. On run 19's models (README): heads on the `<SEG>` query
with the cross-entropy flowing into it, in-style 67.6 (no gate: 76.8); detached, 79.1; on the max-pooled words,
detached, 85.5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GATE_FLOOR", "GATE_REACH", "LabelGate", "gate_map", "tower_probs"]

#: added to the gate's probability before its log: a cell the tower is sure is something else loses ~9 nats, not all
GATE_FLOOR = 1e-4
#: the gate reads the largest probability of each class within this many cells of a cell (a max-pool): keypoints
#: lie on outlines, where the tower's stride-4 map often says background or the next part; the keys place the point
GATE_REACH = 2


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


class LabelGate(nn.Module):
    """The category and part heads on the text's pooled states and the per-cell log-gate they give (module docstring)."""

    def __init__(self, words_dim: int, n_categories: int, n_parts: int):
        super().__init__()
        self.category = nn.Linear(words_dim, n_categories + 1)  # + the background, class 0, as the tower's
        self.part = nn.Linear(words_dim, n_parts + 1)
        for head in (self.category, self.part):  # zero: uniform over the classes, the same gate on every cell
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.strength = nn.Parameter(torch.ones(2))

    def forward(self, words: torch.Tensor, category_logits: torch.Tensor, part_logits: torch.Tensor,
                size: tuple[int, int]) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """What the gate adds to each cell's logit (B, h * w) for the text's pooled states `words` (B, D) on the
        tower's (B, C, h', w') category and part logits, and the heads' label logits (category (B, 1 + C_cat),
        part (B, 1 + C_part)), read from `words` detached: `train_localizer.label_loss` on them trains the heads,
        not the LM (flowing into the `<SEG>` query it cost 9 points in style)."""
        detached = words.detach()
        labels = (self.category(detached), self.part(detached))
        named_for_gate = (self.category(words), self.part(words))  # the localization loss reaches the LM here
        gate = torch.zeros(words.shape[0], size[0] * size[1], device=words.device)
        for named, strength, tower in zip(named_for_gate, self.strength, (category_logits, part_logits)):
            mixed = torch.einsum("bc,bcs->bs", torch.softmax(named.float(), dim=-1), gate_map(tower, size).flatten(2))
            gate = gate + strength * torch.log(mixed + GATE_FLOOR)
        return gate, labels

"""The special tokens both models use, added to whatever tokenizer the base checkpoint has."""

from __future__ import annotations

IMAGE = "<image>"  # expanded to the image tokens
SEG = "<SEG>"  # the localizer reads its hidden state
P_OPEN = "<p>"
P_CLOSE = "</p>"
KPT = "<kpt>"  # placeholder for a keypoint feature (descriptor)
REGION = "<region>"  # placeholder for the region (positional) feature (descriptor)
PAD = "<pad>"
BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"

ADDED = (IMAGE, SEG, P_OPEN, P_CLOSE, KPT, REGION)

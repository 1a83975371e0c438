"""Keypoint layouts of the animal pose datasets: keypoint names, skeleton, and the part each keypoint lies on.

A layout is recognised from the `keypoints` list of a COCO category. Two are known:

* AP-10K (Yu et al. 2021): 17 keypoints, the order of `partworld.animals.AP10K_KEYPOINTS`.
* Animal-Pose (Cao et al. 2019): 20 keypoints (eyes, ear bases, nose, throat, tail base, withers, and
  elbow/knee/paw of each leg; "L_B_Elbow" is the hind leg's upper joint).

Neither dataset has part masks, so a keypoint's part is read off its name. Two granularities:

* `coarse`: the part names PartWorld's animals use (head, ears, body, legs, tail), plus "neck" for the
  neck/throat point, which PartWorld draws as part of the body but which both datasets name on its own;
* `fine`: the same, with the legs split into "left front leg", "right front leg", "left back leg",
  "right back leg" (Pascal-Part's names for an animal's own left/right).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from talking_points.pipeline.data.partworld.animals import AP10K_KEYPOINTS

__all__ = [
    "AP10K",
    "ANIMAL_POSE",
    "LAYOUTS",
    "KeypointLayout",
    "PartGranularity",
    "layout_of",
]


class PartGranularity(str, Enum):
    """How finely keypoints are grouped into parts."""

    coarse = "coarse"  # PartWorld animal parts: head, ears, neck, body, legs, tail
    fine = "fine"  # the legs one by one: left/right front/back leg


_LEGS = ("left front leg", "right front leg", "left back leg", "right back leg")


@dataclass(frozen=True)
class KeypointLayout:
    """Names (dataset order), skeleton (1-based pairs, as in COCO) and the fine part of every keypoint."""

    name: str
    keypoints: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    fine_parts: Mapping[str, str]

    def __post_init__(self) -> None:
        if set(self.fine_parts) != set(self.keypoints):
            raise ValueError(f"layout {self.name}: every keypoint needs a part")
        k = len(self.keypoints)
        if not all(1 <= a <= k and 1 <= b <= k for a, b in self.skeleton):
            raise ValueError(f"layout {self.name}: skeleton pairs must be 1-based indices up to {k}")

    def part_of(self, keypoint: str, granularity: PartGranularity) -> str:
        """The part `keypoint` lies on, at `granularity`."""
        fine = self.fine_parts[keypoint]
        if granularity is PartGranularity.fine:
            return fine
        elif granularity is PartGranularity.coarse:
            return "legs" if fine in _LEGS else fine
        else:
            raise ValueError(f"unknown part granularity {granularity!r}")

    def parts(self, granularity: PartGranularity) -> tuple[str, ...]:
        """Distinct part names in order of their first keypoint (their index gives the part_id suffix)."""
        return tuple(dict.fromkeys(self.part_of(k, granularity) for k in self.keypoints))


def _leg(side: str, end: str) -> str:
    return f"{side} {end} leg"


AP10K = KeypointLayout(
    name="ap10k",
    keypoints=AP10K_KEYPOINTS,
    skeleton=((1, 2), (1, 3), (2, 3), (3, 4), (4, 5), (4, 6), (6, 7), (7, 8), (4, 9), (9, 10), (10, 11),
              (5, 12), (12, 13), (13, 14), (5, 15), (15, 16), (16, 17)),
    fine_parts={
        "left_eye": "head", "right_eye": "head", "nose": "head", "neck": "neck", "root_of_tail": "tail",
        **{f"{side}_{joint}": _leg(side, "front") for side in ("left", "right")
           for joint in ("shoulder", "elbow", "front_paw")},
        **{f"{side}_{joint}": _leg(side, "back") for side in ("left", "right")
           for joint in ("hip", "knee", "back_paw")},
    },
)  # fmt: skip

_AP_SIDES = {"L": "left", "R": "right"}
_AP_ENDS = {"F": "front", "B": "back"}
ANIMAL_POSE = KeypointLayout(
    name="animal_pose",
    keypoints=("L_Eye", "R_Eye", "L_EarBase", "R_EarBase", "Nose", "Throat", "TailBase", "Withers",
               "L_F_Elbow", "R_F_Elbow", "L_B_Elbow", "R_B_Elbow", "L_F_Knee", "R_F_Knee", "L_B_Knee",
               "R_B_Knee", "L_F_Paw", "R_F_Paw", "L_B_Paw", "R_B_Paw"),
    skeleton=((1, 2), (1, 3), (2, 4), (1, 5), (2, 5), (5, 6), (6, 8), (7, 8), (6, 9), (9, 13), (13, 17),
              (6, 10), (10, 14), (14, 18), (7, 11), (11, 15), (15, 19), (7, 12), (12, 16), (16, 20)),
    fine_parts={
        "L_Eye": "head", "R_Eye": "head", "Nose": "head", "L_EarBase": "ears", "R_EarBase": "ears",
        "Throat": "neck", "TailBase": "tail", "Withers": "body",
        **{f"{s}_{e}_{j}": _leg(side, end) for s, side in _AP_SIDES.items() for e, end in _AP_ENDS.items()
           for j in ("Elbow", "Knee", "Paw")},
    },
)  # fmt: skip

LAYOUTS: dict[str, KeypointLayout] = {layout.name: layout for layout in (AP10K, ANIMAL_POSE)}


def layout_of(names: Sequence[str]) -> KeypointLayout | None:
    """The known layout whose keypoint names are exactly `names` (in order), or None."""
    names = tuple(names)
    return next((layout for layout in LAYOUTS.values() if layout.keypoints == names), None)

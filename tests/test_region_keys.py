"""The localizer's per-cell region keys (models.region_keys) say at every cell what the descriptor's per-point
functions (point_decoder.region_geometry, instance_context) say at that cell's centre."""

import numpy as np
import pytest
import torch

from talking_points.pipeline.models.point_decoder import (
    class_map_at,
    instance_context,
    region_at,
    region_geometry,
)
from talking_points.pipeline.models.region_keys import (
    REGION_KEY_FEATURES,
    image_region_features,
    region_key_features,
)


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """Three dogs (category 2; the right one small) and a cat (category 1), on a 20 x 24 grid; part 1 head,
    2 body, 3 a leg each of the two large dogs has twice."""
    cat = np.zeros((20, 24), np.int64)
    part = np.zeros_like(cat)
    for x0, x1 in ((1, 7), (9, 15)):
        cat[4:14, x0:x1] = 2
        part[4:7, x0:x1], part[7:14, x0:x1] = 1, 2
        part[10:14, x0], part[10:14, x1 - 1] = 3, 3  # two legs, apart
    cat[15:18, 18:21], part[15:18, 18:21] = 2, 1
    cat[2:6, 18:23], part[2:6, 18:23] = 1, 2
    return cat, part


def _logits(labels: np.ndarray, classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.from_numpy(labels), classes).permute(2, 0, 1)[None].float() * 10


def test_every_cell_gets_what_the_descriptor_computes_at_its_centre():
    cat, part = _scene()
    h, w = cat.shape
    feats = image_region_features(cat, part)
    assert feats.shape == (REGION_KEY_FEATURES, h, w)
    cat_logits, part_logits = _logits(cat, 3), _logits(part, 4)
    checked = 0
    for row, col in zip(*np.nonzero((cat > 0) & (part > 0))):
        point = torch.tensor([[(col + 0.5) / w, (row + 0.5) / h]])
        cat_same, part_same = class_map_at(cat_logits, point), class_map_at(part_logits, point)
        obj = region_at(cat_same, point)
        prt = region_at(part_same, point, within=obj)
        for level, region, same in ((0, obj, cat_same), (1, prt, part_same & obj)):
            got = torch.from_numpy(feats[level * 17:(level + 1) * 17, row, col]).double()
            geometry = region_geometry(region, point)[0].double()
            assert got[0] == 1
            assert torch.allclose(got[1:7], geometry[:6], atol=1e-6)  # box, centre of mass
            assert torch.allclose(got[7:9], geometry[6:], atol=1e-6)  # the cell's place in the box
            assert torch.allclose(got[9:], instance_context(same, region)[0].double(), atol=1e-6)
        checked += 1
    assert checked > 100
    assert (feats[:, cat == 0] == 0).all()  # background: in no object, no part


def test_the_left_dog_of_the_two_and_the_rightmost_leg_are_plain_features():
    cat, part = _scene()
    feats = image_region_features(cat, part)
    left, right, cat_cell = feats[:, 5, 2], feats[:, 5, 10], feats[:, 3, 20]
    # object level: others of its category lie right of the left dog (share 1), on both sides of the middle one
    assert left[10] == 1 and left[11] == 0 and left[12] == 1
    assert 0 < right[11] < 1 and 0 < right[12] < 1
    assert cat_cell[10] == 0 and cat_cell[15:17].tolist() == [0.5, 0.5]  # the only cat: no others
    # part level: the left dog's left leg has its other leg to the right, inside its own dog only
    leg = feats[17:, 10, 1]
    assert leg[10] == 1 and leg[12] == 1 and leg[11] == 0
    assert leg[15] == pytest.approx((6 + 0.5) / 24)  # the other leg's centre: column 6, not another dog's


def test_region_key_features_on_a_batch_of_logits_and_a_coarser_grid():
    cat, part = _scene()
    cat_logits = torch.cat([_logits(cat, 3), _logits(np.zeros_like(cat), 3)])
    part_logits = torch.cat([_logits(part, 4), _logits(np.zeros_like(part), 4)])
    full = region_key_features(cat_logits, part_logits, cat.shape)
    assert full.shape == (2, REGION_KEY_FEATURES, *cat.shape) and full.dtype == torch.float32
    assert torch.equal(full[0], torch.from_numpy(image_region_features(cat, part)))
    assert (full[1] == 0).all()  # nothing segmented
    half = region_key_features(cat_logits, part_logits, (10, 12))
    assert torch.allclose(half, torch.nn.functional.avg_pool2d(full, 2))

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
    RANK_AXES,
    RANK_CLASSES,
    RANK_LAYOUT,
    REGION_KEY_FEATURES,
    image_rank_maps,
    image_region_features,
    rank_class,
    rank_classes,
    rank_maps,
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


def _two_dogs() -> tuple[np.ndarray, np.ndarray]:
    """A small dog low on the left, a large one high on the right with two legs (part 3) apart, a cat alone,
    and a stray dog cell (fewer than `min_cells`) on a 20 x 24 grid: the three axes rank the dogs differently."""
    cat = np.zeros((20, 24), np.int64)
    part = np.zeros_like(cat)
    cat[14:18, 1:5], part[14:18, 1:5] = 2, 2  # small, low, left
    cat[2:12, 10:18], part[2:12, 10:18] = 2, 2  # large, high, right
    part[8:12, 10], part[8:12, 17] = 3, 3
    cat[1:4, 20:23], part[1:4, 20:23] = 1, 1
    cat[18, 22] = 2  # a stray cell of dog
    return cat, part


def _classes(maps: np.ndarray, row: int, col: int, n: int | None = None) -> set[tuple]:
    """The rank classes (axis, from the end, k, n) at a cell, of `n` instances only when given."""
    return {RANK_LAYOUT[i] for i in np.flatnonzero(maps[:, row, col]) if n is None or RANK_LAYOUT[i][3] == n}


def _as_layout(*classes: tuple) -> set[tuple]:
    return {RANK_LAYOUT[rank_class(*c)] for c in classes}


def test_rank_maps_rank_the_segmented_objects_and_parts_as_the_annotations_rank_instances():
    cat, part = _two_dogs()
    objects, parts = image_rank_maps(cat, part, min_cells=4)
    assert objects.shape == (RANK_CLASSES, *cat.shape)
    # two dogs segmented apart: keypoints.geometry's ranks (box centre x, box centre y, size), from either end
    small = _as_layout(("lr", 0, 1, 2), ("tb", 1, 1, 2), ("size", 1, 1, 2))
    large = _as_layout(("lr", 1, 1, 2), ("tb", 0, 1, 2), ("size", 0, 1, 2))
    assert _classes(objects, 15, 2, n=2) == small and _classes(objects, 5, 12, n=2) == large
    assert _classes(objects, 18, 22, n=2) == set()  # a stray cell is none of the two
    lone = RANK_LAYOUT[0]
    assert all(lone in _classes(objects, r, c) for r, c in ((15, 2), (5, 12), (2, 21), (18, 22)))
    assert _classes(objects, 0, 0) == set()  # the background: none
    # the annotations' counts and ranks give the same classes (what the instance heads learn from)
    truth = rank_classes(torch.tensor([2, 2, 1]), torch.tensor([[1, 2, 2], [2, 1, 1], [1, 1, 1]]))
    assert [{RANK_LAYOUT[i] for i in np.flatnonzero(t)} for t in truth.numpy()] == [small, large, {lone}]
    # parts: the large dog's two legs among themselves
    assert _as_layout(("lr", 0, 1, 2)) <= _classes(parts, 9, 10, n=2)
    assert _as_layout(("lr", 1, 1, 2)) <= _classes(parts, 9, 17, n=2)
    assert not _as_layout(("lr", 0, 1, 2)) & _classes(parts, 9, 17)


def test_instances_that_touch_are_told_apart_by_their_share_of_the_class_along_the_axis():
    """Two dogs side by side segment as one region: for two of them the left half of the region's cells is
    the left dog; the size of each cannot be told, so the size classes cover both."""
    cat = np.zeros((10, 20), np.int64)
    cat[2:8, 2:10], cat[3:7, 10:16] = 2, 2  # touching: one region
    objects, _ = image_rank_maps(cat, np.zeros_like(cat))
    assert _as_layout(("lr", 0, 1, 2)) <= _classes(objects, 4, 3, n=2)
    assert _as_layout(("lr", 1, 1, 2)) <= _classes(objects, 4, 14, n=2)
    assert not _as_layout(("lr", 1, 1, 2)) & _classes(objects, 4, 3)
    assert _as_layout(("size", 0, 1, 2), ("size", 1, 1, 2)) <= _classes(objects, 4, 3, n=2) & _classes(objects, 4, 14)
    # three of them: thirds along x, the middle one the second from either end
    assert _as_layout(("lr", 0, 2, 3), ("lr", 1, 2, 3)) <= _classes(objects, 4, 9, n=3)


def test_rank_classes_count_from_the_nearer_end():
    has = rank_classes(torch.tensor([6, 5, 1, -100, 7]),
                       torch.tensor([[4, 1, 6], [3, 3, 3], [1, 1, 1], [1, 1, 1], [1, 1, 1]]))
    assert has.shape == (5, RANK_CLASSES)

    def named(row):
        return {RANK_LAYOUT[i] for i in np.flatnonzero(has[row].numpy())}

    assert named(0) == _as_layout(("lr", 1, 3, 6), ("tb", 0, 1, 6), ("size", 1, 1, 6))
    assert named(1) == _as_layout(*((a, e, 3, 5) for a in RANK_AXES for e in (0, 1)))  # the middle of five
    assert named(2) == {RANK_LAYOUT[0]} and not has[3].any() and not has[4].any()  # lone; missing; too many
    assert rank_class("tb", 1, 1, 1) == 0 and RANK_LAYOUT[rank_class("size", 1, 2, 4)] == (2, 1, 2, 4)


def test_rank_maps_on_a_batch_reach_past_the_outline_and_pool_onto_a_coarser_grid():
    cat, part = _two_dogs()
    cat_logits = torch.cat([_logits(cat, 3), _logits(np.zeros_like(cat), 3)])
    part_logits = torch.cat([_logits(part, 4), _logits(np.zeros_like(part), 4)])
    full = rank_maps(cat_logits, part_logits, cat.shape, reach=0)
    assert full.shape == (2, 2, RANK_CLASSES, *cat.shape) and full.dtype == torch.float32
    assert torch.equal(full[0], torch.from_numpy(image_rank_maps(cat, part))) and (full[1] == 0).all()
    near = rank_maps(cat_logits, part_logits, cat.shape, reach=2)
    left = rank_class("lr", 0, 1, 2)
    assert near[0, 0, left, 12, 3] == 1 and near[0, 0, left, 13, 5] == 1  # two cells off the small dog's box
    assert near[0, 0, left, 11, 2] == 0 and near[0, 0, left, 15, 7] == 0  # three
    half = rank_maps(cat_logits, part_logits, (10, 12), reach=0)
    assert torch.equal(half, torch.nn.functional.max_pool2d(full.flatten(1, 2), 2).unflatten(1, (2, RANK_CLASSES)))


def test_the_rank_map_probe_counts_a_keypoint_held_only_with_every_class_of_its_instance():
    from benchmark_modules import load_benchmark

    held_at_points = load_benchmark("probe_rank_maps").held_at_points
    cat, part = _two_dogs()
    maps = torch.from_numpy(image_rank_maps(cat, part))[None, 0]  # (1 image, R, h, w): the objects
    h, w = cat.shape
    points = np.array([[(2 + 0.5) / w, (15 + 0.5) / h]] * 3 + [[0.01, 0.01]])  # the small dog x 3, background
    has = rank_classes(torch.tensor([2, 2, 0, 2]), torch.tensor([[1, 2, 2], [2, 1, 1], [1, 1, 1], [1, 2, 2]]))
    assert held_at_points(maps, np.zeros(4, int), points, has).tolist() == [True, False, False, False]

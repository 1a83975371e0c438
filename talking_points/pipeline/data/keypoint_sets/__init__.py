"""Animal keypoint sets (AP-10K, Animal-Pose) and the synthetic AP-10K used by localizer-as-reward GRPO.

* `layouts`: the two keypoint layouts and the part each keypoint lies on;
* `coco_keypoints`: COCO-keypoint json -> pose samples table (one row per labelled keypoint);
* `keypoint_rows`: pose samples -> rows of the KEYPOINTS table (geometry and look columns);
* `synthetic_ap10k`: PartWorld animals written in the AP-10K layout (images + json);
* `cross_family`: train on one family, test on another (Bovidae <-> Canidae).
"""

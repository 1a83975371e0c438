"""The library behind the pipeline stages: data, keypoints, synthesis, models, training, rl, metrics."""

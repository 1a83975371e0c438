"""Dense pretraining of the tiny vision tower on the training images' object and part masks (`pretrain-vision`)."""

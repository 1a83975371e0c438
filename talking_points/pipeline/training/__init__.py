"""Supervised fine-tuning of the point models: datasets, one generic loop (accelerate), step functions."""

"""Descriptor-through-localizer evaluation: which texts to score, the predictions, and the reports."""

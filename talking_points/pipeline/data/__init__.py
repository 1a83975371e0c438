"""Data: table schemas and files, annotation records, dataset adapters, the PartWorld generator."""

# The adapter registry imports `partworld`, which imports `adapters.base`; loading the registry first means
# that importing `partworld` directly (before the adapters) does not meet a half-initialised registry.
from talking_points.pipeline.data import adapters as _adapters  # noqa: F401

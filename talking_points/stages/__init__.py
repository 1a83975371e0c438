"""Thin Typer commands, one per DVC stage: read params, call `talking_points.pipeline`, write outputs."""

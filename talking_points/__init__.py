"""talking-points: describe a pixel in words, and find the pixel again from the words.

`talking_points.pipeline` is the library (pure functions and classes, no CLI);
`talking_points.stages` holds one thin Typer command per DVC stage;
`talking_points.cli` exposes them all as `tp <stage>`.
"""

__version__ = "0.1.0"

"""``fs.image_analysis``: image loading and lazy, seeded image transforms (see frames.image_analysis)."""

from framestream.frames.image_analysis import *  # noqa: F403
from framestream.frames.image_analysis import __all__  # noqa: F401

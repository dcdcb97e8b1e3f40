"""``IterRecipe``: how to make an SFrame iterator again, elsewhere (on a Dask worker).

``SFrameIter.recipe()`` gives one; ``part`` makes a worker's share of the rows
(``SFrameIter.part``), which is how data-parallel training hands each worker its data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class IterRecipe:
    """An SFrame iterator's class and arguments (the seed resolved): picklable, so it can
    travel to Dask workers, where ``make`` or ``part`` builds the iterator.

    >>> import framestream as fs
    >>> from framestream import mx
    >>> recipe = mx.io.SFrameIter(fs.SFrame({'x': [1.0, 2.0]}), 'x', batch_size=2).recipe()
    >>> recipe.make().provide_data[0].shape
    (2, 1)
    """

    cls: type
    arguments: dict[str, Any]

    def make(self, **changes: Any) -> Any:
        return self.cls(**{**self.arguments, **changes})

    def part(self, part_index: int, num_parts: int, part_by: str = "batch") -> Any:
        """Worker ``part_index``'s share (see ``SFrameIter.part``)."""
        taken = [k for k in ("part_index", "num_parts", "part_by") if k in self.arguments]
        if taken:
            raise ValueError(f"{self.cls.__name__}.part: the iterator was made with {taken} "
                             "already; make it without them")
        return self.make(part_index=part_index, num_parts=num_parts, part_by=part_by)

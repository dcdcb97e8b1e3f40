"""``fs.datasets``: real data sets that install offline, as SFrames (see frames.datasets)."""

from framestream.frames.datasets import (  # noqa: F401
    FASHION_MNIST_CLASSES,
    DatasetNotInstalled,
    diabetes_csv,
    digits,
    fashion_mnist,
    mnist,
    read_idx,
    sample_photos,
)

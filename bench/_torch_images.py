"""The peer side of the image benchmark, run inside bench/.venv-torch: a PyTorch
DataLoader over JPEG files with torchvision-style PIL transforms (torchvision itself
does not install beside torch 2.13.0 CPU, so the transforms are written out here).

Prints one JSON line: images per second for each repetition."""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

MEAN, STD = (123.7, 116.3, 103.5), 57.6


class Photos(Dataset):
    def __init__(self, files: list[str]):
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        img = Image.open(self.files[i]).convert("RGB").resize((256, 256), Image.Resampling.BILINEAR)
        top, left = random.randint(0, 32), random.randint(0, 32)
        img = img.crop((left, top, left + 224, top + 224))
        if random.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1)
        x = (x - np.array(MEAN, np.float32)[:, None, None]) / STD
        return torch.from_numpy(np.ascontiguousarray(x))


def _init(_: int) -> None:
    torch.set_num_threads(1)


def main(folder: str, workers: int, reps: int) -> None:
    torch.set_num_threads(1)
    files = sorted(str(p) for p in Path(folder).glob("*.jpg"))
    rates = []
    for _ in range(reps):
        loader = DataLoader(Photos(files), batch_size=64, num_workers=workers, worker_init_fn=_init,
                            persistent_workers=False)
        t0 = time.perf_counter()
        n = sum(len(batch) for batch in loader)
        rates.append(n / (time.perf_counter() - t0))
    print(json.dumps({"images": len(files), "rates": rates, "torch": torch.__version__}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))

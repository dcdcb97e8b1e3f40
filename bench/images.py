"""Image stream: decode + resize 256 + random crop 224 + flip + normalise on JPEG photos.

framestream (an image column in a saved store, transforms fused and run in its thread
pool) against a PyTorch DataLoader with the same PIL work per image and as many worker
processes as framestream has threads. The photos are scikit-learn's two 640x427 JPEGs,
copied to N files (each copy is decoded every time, as a real data set would be).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from _util import BENCH, THREADS, TMP, setup_env, torch_python

MEAN, STD = (123.7, 116.3, 103.5), 57.6


def _photos(n: int) -> Path:
    import sklearn

    folder = TMP / f"photos-{n}"
    if not folder.exists() or len(list(folder.glob("*.jpg"))) != n:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        sources = sorted((Path(sklearn.__file__).parent / "datasets" / "images").glob("*.jpg"))
        for i in range(n):
            shutil.copyfile(sources[i % len(sources)], folder / f"{i:05d}.jpg")
    return folder


def _framestream(folder: Path, reps: int) -> dict[str, Any]:
    import dask

    from framestream import image_analysis as ia

    images = ia.load_images(str(folder), with_path=False)["image"].materialize()
    rates = []
    for epoch in range(reps):
        cropped = ia.random_crop(ia.resize(images, 256, 256, decode=True), 224, 224, seed=1, epoch=epoch)
        tensors = ia.to_tensor(ia.random_flip(cropped, seed=2, epoch=epoch), mean=list(MEAN), scale=1 / STD)
        blocks = tensors._data.to_delayed(optimize_graph=False).ravel()
        t0 = time.perf_counter()
        n = 0
        for i in range(0, len(blocks), THREADS):  # THREADS chunks at a time, like a prefetching loader
            n += sum(len(b) for b in dask.compute(*blocks[i : i + THREADS]))
        rates.append(n / (time.perf_counter() - t0))
    return {"images": len(images), "rates": rates, "chunks": len(blocks)}


def _sframe_image_iter(folder: Path, reps: int) -> dict[str, Any]:
    """The same work through ``mx.io.SFrameImageIter`` over the photos saved in an SFrame
    (JPEG bytes in the store, decoded per batch in its thread pool), one epoch per rep."""
    from framestream import SFrame, mx
    from framestream import image_analysis as ia

    path = TMP / f"photos-{len(list(folder.glob('*.jpg')))}.sframe"
    shutil.rmtree(path, ignore_errors=True)
    ia.load_images(str(folder), with_path=False).save(str(path))
    it = mx.io.SFrameImageIter(SFrame(str(path)), data_field=["image"], batch_size=64,
                               resize=(256, 256), data_shape=(3, 224, 224), random_crop=True,
                               random_mirror=True, mean_r=MEAN[0], mean_g=MEAN[1], mean_b=MEAN[2],
                               scale=1 / STD, num_threads=THREADS, seed=1)
    rates = []
    for _ in range(reps):
        it.reset()
        t0 = time.perf_counter()
        n = sum(64 - batch.pad for batch in it)
        rates.append(n / (time.perf_counter() - t0))
    shutil.rmtree(path, ignore_errors=True)
    return {"images": n, "rates": rates}


def run(quick: bool = False) -> dict[str, Any]:
    setup_env()
    n, reps = (128, 2) if quick else (1024, 3)
    folder = _photos(n)
    ours = _framestream(folder, reps)
    through_iter = _sframe_image_iter(folder, reps)
    peer_out = subprocess.run([str(torch_python()), str(BENCH / "_torch_images.py"), str(folder), str(THREADS), str(reps)],
                              capture_output=True, text=True, check=True)
    peer = json.loads(peer_out.stdout.strip().splitlines()[-1])
    med_ours, med_peer = statistics.median(ours["rates"]), statistics.median(peer["rates"])
    med_iter = statistics.median(through_iter["rates"])
    return {"name": "images", "quick": quick, "images": n, "reps": reps, "threads": THREADS,
            "framestream": {**ours, "median_img_s": round(med_ours, 1)},
            "sframe_image_iter": {**through_iter, "median_img_s": round(med_iter, 1)},
            "torch_dataloader": {**peer, "median_img_s": round(med_peer, 1)},
            "ratio_fs_over_torch": round(med_ours / med_peer, 3),
            "ratio_iter_over_torch": round(med_iter / med_peer, 3)}


def markdown(res: dict[str, Any]) -> str:
    fs, pt = res["framestream"], res["torch_dataloader"]
    verdict = "PASS" if res["ratio_fs_over_torch"] >= 1 else "FAIL"
    return "\n".join([
        f"{res['images']} JPEG photos (640x427), {res['reps']} epochs, {res['threads']} threads / workers; "
        "decode + resize 256x256 + random crop 224 + random flip + normalise to float32 CHW.", "",
        "| engine | median images/s | every epoch |", "|---|---|---|",
        f"| framestream (image column, fused transforms) | {fs['median_img_s']} | {', '.join(f'{r:.0f}' for r in fs['rates'])} |",
        *([f"| framestream `mx.io.SFrameImageIter` (saved SFrame, batches of 64) | {it['median_img_s']} | "
           f"{', '.join(f'{r:.0f}' for r in it['rates'])} |"] if (it := res.get("sframe_image_iter")) else []),
        f"| PyTorch {pt.get('torch', '')} DataLoader + PIL | {pt['median_img_s']} | {', '.join(f'{r:.0f}' for r in pt['rates'])} |",
        "", f"framestream / PyTorch = {res['ratio_fs_over_torch']} (aim: >= 1): **{verdict}**"
        + (f"; SFrameImageIter / PyTorch = {res['ratio_iter_over_torch']}" if "ratio_iter_over_torch" in res else "")])

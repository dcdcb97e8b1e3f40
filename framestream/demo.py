"""The walkthrough ``make demo`` runs: frames on a real table, end to end.

scikit-learn's diabetes table (442 patients, 10 measurements, disease progression a
year later) is written out as a CSV, then ingested, transformed, summarised, filtered,
grouped, sorted, joined, saved and reopened, with timings.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import framestream as fs
from framestream import aggregate as agg
from framestream.frames._config import home


def run(out_dir: Path) -> fs.SFrame:
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    csv = fs.datasets.diabetes_csv(out_dir)
    print(f"1. ingest {csv} (streamed into a Zarr store)")
    sf = fs.SFrame.read_csv(str(csv), verbose=False)
    print(sf.head(5))

    print("\n2. transform: standardise every measurement (lazy until needed)")
    features = ["age", "bmi", "bp", "tc", "ldl", "hdl", "tch", "ltg", "glu"]
    for f in features:
        sf[f] = sf[f] - sf[f].mean()
        sf[f] = sf[f] / sf[f].std()
    sf["high_risk"] = sf["target"] > 200

    print("\n3. statistics of several columns in one pass over the data")
    stats = sf.summary(["bmi", "bp", "target"])
    for name, s in stats.items():
        print(f"   {name:>6}: mean {s['mean']:9.3f}  std {s['std']:8.3f}  min {s['min']:8.3f}  max {s['max']:8.3f}")

    print("\n4. filter: patients whose disease progressed past 200")
    risky = sf[sf["high_risk"] == 1]
    print(f"   {risky.num_rows()} of {sf.num_rows()} rows; their mean bmi z-score is {risky['bmi'].mean():.2f}")

    print("\n5. groupby sex")
    by_sex = sf.groupby("sex", {"patients": agg.COUNT(), "mean_target": agg.MEAN("target"),
                                "std_target": agg.STD("target"), "max_bmi": agg.MAX("bmi")}).sort("sex")
    print(by_sex)

    print("\n6. sort and join: the five patients with the highest progression, with their group mean")
    top = sf.add_row_number("patient").sort("target", ascending=False).head(5)[["patient", "sex", "target"]]
    print(top.join(by_sex[["sex", "mean_target"]], on="sex").sort("target", ascending=False))

    saved = out_dir / "diabetes.sframe"
    print(f"\n7. save to {saved} (Zarr v3) and reopen lazily")
    sf.save(saved, overwrite=True)
    reopened = fs.SFrame(str(saved))
    print(f"   reopened {reopened.num_rows()} rows x {reopened.num_columns()} columns; "
          f"bmi mean {reopened['bmi'].mean():+.2e}, std {reopened['bmi'].std():.3f}")
    images(out_dir)
    print(f"\ndone in {time.perf_counter() - t0:.1f} s; outputs in {out_dir}")
    return reopened


def images(out_dir: Path) -> None:
    """Image columns: Fashion-MNIST into an SFrame, augmented lazily into a tensor column."""
    from framestream import image_analysis as ia
    from framestream.datasets import FASHION_MNIST_CLASSES, DatasetNotInstalled, fashion_mnist

    print("\n8. images: Fashion-MNIST test set -> augmented float32 tensors (N, 1, 28, 28)")
    try:
        test = fashion_mnist("test")
    except DatasetNotInstalled as exc:
        print(f"   skipped: {exc}")
        return
    counts = test.groupby("label", {"n": agg.COUNT()}).sort("label")["n"].to_list()
    print(f"   {test.num_rows()} images, per class {counts} ({FASHION_MNIST_CLASSES[0]} ... {FASHION_MNIST_CLASSES[-1]})")
    t = time.perf_counter()
    padded = ia.resize(test["image"], 32, 32, decode=True)
    augmented = ia.random_flip(ia.random_crop(padded, 28, 28, seed=0), seed=1)
    tensors = ia.to_tensor(augmented, mean=[72.9], scale=1 / 90.0)
    stats = tensors.summary()
    elapsed = time.perf_counter() - t
    print(f"   resize 32 + random crop 28 + random flip + normalise: {test.num_rows() / elapsed:,.0f} images/s; "
          f"element shape {tensors.element_shape}, pixel mean {stats['mean'].mean():+.3f}, std {np.sqrt(stats['var'].mean()):.3f}")
    test["image"].head(16)[0].save(out_dir / "fashion_mnist_0.png")
    print(f"   first image written to {out_dir / 'fashion_mnist_0.png'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="framestream tour", description=__doc__)
    parser.add_argument("--out", type=Path, default=home() / "demo", help="where the demo writes its files")
    args = parser.parse_args(argv)
    run(args.out)


if __name__ == "__main__":
    main()

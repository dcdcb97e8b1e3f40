"""`make bench`: run the benchmarks, write results/<name>.json and results/README.md.

Usage: ``.venv/bin/python bench/run.py [--quick] [--only NAME]``. Quick runs write
``<name>.quick.json`` so they never replace a full run's figures; the README shows
every result file present, full runs first.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import RESULTS, ForeignLoad, machine_info, wait_for_quiet  # noqa: E402

BENCHMARKS = ["frames_csv", "out_of_core", "images", "training", "streaming", "prediction"]


def _result_path(name: str, quick: bool) -> Path:
    return RESULTS / (f"{name}.quick.json" if quick else f"{name}.json")


def render_readme() -> str:
    """Markdown for every result file present: machine info, then one section per file."""
    lines = ["# framestream benchmarks", "",
             "Written by `bench/run.py` (`make bench`; `--quick` for the small sizes, `--only NAME` for one).", ""]
    for quick in (False, True):
        for name in BENCHMARKS:
            path = _result_path(name, quick)
            if not path.exists():
                continue
            res = json.loads(path.read_text())
            m = res["machine"]
            v = ", ".join(f"{k} {ver}" for k, ver in m["versions"].items())
            lines += [f"## {name} ({'quick' if quick else 'full'})", "",
                      f"{m['date']}; commit {m.get('git', '?')}; {m['cpu']}, {m['logical_cores']} cores, {m['ram_gb']} GB RAM; "
                      f"Python {m['python']}; {v}; {m['threads']} threads per engine; "
                      f"run took {res['elapsed_s']:.0f} s; command `{res['command']}`.", "",
                      _background(res), "",
                      importlib.import_module(name).markdown(res), ""]
    gpu = RESULTS / "gpu_training.json"
    if gpu.exists():
        lines += ["## gpu_training (device)", "", importlib.import_module("gpu_training").markdown(
            json.loads(gpu.read_text())), ""]
    return "\n".join(lines)


def _background(res: dict[str, Any]) -> str:
    b = res.get("background", {})
    return (f"Other processes used {b.get('foreign_cpu_s')} CPU-s during the run "
            f"({100 * b.get('foreign_cpu_share', 0):.0f}% of all cores); timings with a high share are noisy.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (100-400 MB) for a fast check")
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="run only this benchmark")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in args.only or BENCHMARKS:
        print(f"== {name} ({'quick' if args.quick else 'full'})", flush=True)
        module = importlib.import_module(name)
        waited = wait_for_quiet()
        machine = machine_info()
        load = ForeignLoad()
        t0 = time.perf_counter()
        result: dict[str, Any] = module.run(quick=args.quick)
        result["elapsed_s"] = round(time.perf_counter() - t0, 1)
        result["background"] = {**load.result(), "waited_for_quiet_s": round(waited, 1)}
        after = machine_info()["git"]
        machine["git"] += "" if after == machine["git"] else f" (HEAD moved to {after} during the run)"
        result["machine"] = machine
        result["command"] = " ".join([".venv/bin/python bench/run.py", *sys.argv[1:]])
        _result_path(name, args.quick).write_text(json.dumps(result, indent=1) + "\n")
        print(module.markdown(result), flush=True)
    (RESULTS / "README.md").write_text(render_readme() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

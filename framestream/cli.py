"""The ``framestream`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from framestream.frames._config import home

    parser = argparse.ArgumentParser(prog="framestream", description="Out-of-core frames feeding neural networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the walkthrough on bundled real data")
    demo.add_argument("--out", type=Path, default=home() / "demo", help="where the demo writes its files")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from framestream.demo import run

        run(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``capo-ray-inspect RUN_DIR [--step N ...] [--out DIR]``: write the inspector's HTML pages
for a run (default: ``RUN_DIR/inspect/``) and print where they are."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="capo-ray-inspect",
        description="Static HTML pages showing a capo-ray run's token credit, critiques and metrics.",
    )
    parser.add_argument("run_dir", type=Path, help="a run directory (holds metrics.jsonl and samples.jsonl)")
    parser.add_argument("--step", type=int, action="append", help="only this step's page (repeatable); default: every logged step")
    parser.add_argument("--out", type=Path, help="output folder (default: RUN_DIR/inspect)")
    args = parser.parse_args(argv)

    from capo_ray.inspect.page import render_run

    run_dir = args.run_dir.resolve()
    try:
        pages = render_run(run_dir, (args.out or run_dir / "inspect").resolve(), args.step)
    except (FileNotFoundError, ValueError) as err:
        print(f"capo-ray-inspect: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"metrics page: {pages[0]}")
    print(f"{len(pages) - 1} step page(s): {', '.join(p.name for p in pages[1:]) or 'none (no samples logged)'}")


if __name__ == "__main__":
    main()

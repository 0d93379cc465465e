"""Writes the README's figure thumbnails, ``docs/thumbnails/<experiment>-<stem>.png``.

    python docs/thumbnails.py --results results      # what `make thumbnails` runs (after `make reproduce`)

For every registered experiment it takes the newest finished run under ``--results`` and shrinks each of
its PNG figures to a fixed width. An experiment with no finished run is reported and skipped (exit code 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "thumbnails"
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    from bontheory.cli import _experiment_name, load_experiment, registered
    from bontheory.runs import latest_run

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--width", type=int, default=360, help="thumbnail width in pixels")
    args = parser.parse_args(argv)

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    missing = []
    for name in registered():
        exp = _experiment_name(load_experiment(name))
        run_dir = latest_run(args.results, exp)
        if run_dir is None:
            missing.append(name)
            continue
        for png in sorted(run_dir.glob("*.png")):
            with Image.open(png) as im:
                h = round(im.height * args.width / im.width)
                thumb = im.convert("RGB").resize((args.width, h), Image.LANCZOS)
                target = OUT / f"{exp}-{png.stem}.png"
                thumb.save(target, optimize=True)
                print(target.relative_to(REPO))
    if missing:
        print(f"no finished run under {args.results} for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Writes the README's figure thumbnails, ``docs/thumbnails/<experiment>-<stem>.png``, and its table of experiments.

    python docs/thumbnails.py --results results      # what `make thumbnails` runs (after `make reproduce`)

For every registered experiment it takes the newest finished run under ``--results`` and shrinks each of
its PNG figures to a fixed width, then rewrites the table between the ``<!-- experiments:start -->`` and
``<!-- experiments:end -->`` markers of README.md (name, what it shows, thumbnails). An experiment with no
finished run is listed without thumbnails and reported (exit code 1).
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

    from bontheory.runner import experiment_name, load_experiment, registered
    from bontheory.runs import latest_run

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--width", type=int, default=360, help="thumbnail width in pixels")
    args = parser.parse_args(argv)

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    missing = []
    rows = ["| experiment | what it shows | figures (click for the full thumbnail) |", "|---|---|---|"]
    for name in registered():
        mod = load_experiment(name)
        exp = experiment_name(mod)
        run_dir = latest_run(args.results, exp)
        thumbs = []
        summary = " ".join(str(getattr(mod, "SUMMARY", "")).split()).replace("|", "\\|")
        if run_dir is None:
            missing.append(name)
            rows.append(f"| `{name}` | {summary} | (no run yet) |")
            continue
        for png in sorted(run_dir.glob("*.png")):
            with Image.open(png) as im:
                h = round(im.height * args.width / im.width)
                thumb = im.convert("RGB").resize((args.width, h), Image.LANCZOS)
                target = OUT / f"{exp}-{png.stem}.png"
                thumb.save(target, optimize=True)
                print(target.relative_to(REPO))
                rel = target.relative_to(REPO).as_posix()
                thumbs.append(f'<a href="{rel}"><img src="{rel}" width="200" alt="{exp}: {png.stem}"></a>')
        rows.append(f"| `{name}` | {summary} | {' '.join(thumbs)} |")
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- experiments:start -->", "<!-- experiments:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        readme.write_text(head + start + "\n" + "\n".join(rows) + "\n" + end + tail, encoding="utf-8")
        print("README.md: experiments table updated")
    else:
        print("README.md has no experiments markers; table not written", file=sys.stderr)
    if missing:
        print(f"no finished run under {args.results} for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

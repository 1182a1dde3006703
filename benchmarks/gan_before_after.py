"""A contact sheet of the GAN mode before and after a change, on the same photos.

    python -m benchmarks.gan_before_after --before /tmp/ba/before --after /tmp/ba/after --out docs/gan-before-after.jpg

Each folder holds <photo stem>/bird.mp4 (as `Animator.animate(..., out_dir=folder/stem)` writes them,
e.g. rendered from a `git worktree` of the old commit and from the current checkout). A row per photo:
the input photo, then --frames frames of the old video, then as many of the new one, evenly spread.
Photos: the shipped examples (assets/examples, Kaggle BIRDS-525 CC0), so the sheet can be committed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from birdanim.paths import ASSETS, REPO_ROOT


def main(argv=None) -> int:
    from birdanim.metrics.fidelity import contact_sheet, count_frames, read_frames, sample_indices

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--after", type=Path, required=True)
    ap.add_argument("--photos", type=Path, default=ASSETS / "examples", help="where the input photos are")
    ap.add_argument("--frames", type=int, default=4, help="frames per video")
    ap.add_argument("--cell", type=int, default=112)
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "gan-before-after.jpg")
    args = ap.parse_args(argv)
    stems = sorted(d.name for d in args.before.iterdir() if (d / "bird.mp4").is_file() and (args.after / d.name / "bird.mp4").is_file())
    rows = []
    for stem in stems:
        photo = next(p for p in args.photos.iterdir() if p.stem == stem)
        row = [np.asarray(Image.open(photo).convert("RGB"))]
        for folder in (args.before, args.after):
            mp4 = folder / stem / "bird.mp4"
            # offset by half a step so the first frame is not always the loop's start
            idx = sample_indices(count_frames(mp4), args.frames) + count_frames(mp4) // (2 * args.frames)
            row += list(read_frames(mp4, idx)[0])
        rows.append(row)
    sheet = contact_sheet(rows, cell=args.cell)
    head = 22
    out = np.full((sheet.shape[0] + head, sheet.shape[1], 3), 255, np.uint8)
    out[head:] = sheet
    im = Image.fromarray(out)
    d = ImageDraw.Draw(im)
    pad, gap, c = 4, 12, args.cell
    d.text((pad + 4, 5), "photo", fill=(0, 0, 0))
    d.text((pad + gap + (c + pad) + 4, 5), "before (GAN mode, old)", fill=(0, 0, 0))
    d.text((pad + gap + (c + pad) * (1 + args.frames) + 4, 5), "after (GAN mode, new defaults)", fill=(0, 0, 0))
    x = pad + gap + (c + pad) * (1 + args.frames) - pad // 2 - 1  # a rule between before and after
    d.line([(x, 0), (x, im.height)], fill=(200, 0, 0), width=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    im.save(args.out, quality=85)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB, {len(rows)} photos)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

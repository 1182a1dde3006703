"""Speed of the rig engine's mesh, ARAP and textured renderer, on one core, against references.

    python -m benchmarks.bench_rig_render [--spacing 11] [--repeats 7]
    python -m benchmarks.bench_rig_render --demo docs/arap-demo.png   # also draw rest vs deformed

Times are CPU time of this process (one core; see `best`), the wall clock is printed once for
comparison. A drawn 200x200 px bird (soft alpha, noise texture) is meshed with 6 joints as handles; a wing-lift
deformation is solved and rendered into a 512x384 frame. Prints, each as the best of `--repeats` runs:
mesh build, ARAP factorisation, ARAP solve per frame, render per frame (full frame, and as a tight
sprite composited with `over`), and in the same run two references: a plain cv2.warpAffine of the whole
sprite into the frame (the cheapest possible warp), and the per-triangle cv2.warpAffine renderer (the
usual pure-OpenCV way), with the ratios. The machine is shared: absolute numbers move, ratios less.
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np

from birdanim.engines.rig.arap import ARAP
from birdanim.engines.rig.mesh import mesh_from_mask
from birdanim.engines.rig.render import over, premultiply, render_mesh, render_sprite

FRAME = (384, 512)


def drawn_bird(size: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(premultiplied RGBA texture, joints [6, 2]) of a bird-like shape with a raised-able wing."""
    a = np.zeros((size, size), np.float32)
    cv2.ellipse(a, (100, 115), (70, 36), 10, 0, 360, 1, -1)  # body
    cv2.circle(a, (165, 85), 22, 1, -1)  # head
    cv2.fillConvexPoly(a, np.array([[40, 110], [5, 95], [5, 140]], np.int32), 1)  # tail
    cv2.fillConvexPoly(a, np.array([[120, 100], [60, 40], [30, 35], [75, 105]], np.int32), 1)  # wing
    a = cv2.GaussianBlur(a, (0, 0), 1.0)
    rng = np.random.default_rng(0)
    rgb = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 2.0)
    joints = np.array([[100, 118], [165, 85], [25, 115], [105, 100], [62, 50], [35, 38]], np.float64)
    return premultiply(np.dstack([rgb, a])), joints


def wing_pose(joints: np.ndarray, phase: float) -> np.ndarray:
    """Handles for a wing lifted by `phase` (radians) about the shoulder (joint 3); body joints fixed."""
    c, s = np.cos(phase), np.sin(phase)
    R = np.array([[c, -s], [s, c]])
    out = joints.copy()
    out[4:] = (joints[4:] - joints[3]) @ R.T + joints[3]
    return out


def per_triangle_warp(tex, rest, deformed, triangles, out_shape):
    """Reference: the classic OpenCV triangle warp (warpAffine of each triangle's box + mask)."""
    out = np.zeros((*out_shape, tex.shape[2]), np.float32)
    H, W = out_shape
    for t in triangles:
        src, dst = rest[t].astype(np.float32), deformed[t].astype(np.float32)
        x, y, w, h = cv2.boundingRect(np.round(dst).astype(np.int32))
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w + 1, W), min(y + h + 1, H)
        if x1 <= x0 or y1 <= y0:
            continue
        M = cv2.getAffineTransform(src, (dst - (x0, y0)).astype(np.float32))
        patch = cv2.warpAffine(tex, M, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, np.round((dst - (x0, y0)) * 16).astype(np.int32), 1, cv2.LINE_8, 4)
        roi = out[y0:y1, x0:x1]
        roi[mask > 0] = patch[mask > 0]
    return out


def demo(path: str, spacing: float) -> None:
    """Rest vs wing-lifted bird, mesh wireframe and handles over each, and the clean result on a sky."""
    tex, joints = drawn_bird()
    a = tex[..., 3]
    # a plumage-like texture so the warp is visible: body, darker head and wing, wing bars, an eye
    rgb = np.zeros((200, 200, 3), np.float32)
    rgb[:] = (0.62, 0.45, 0.30)
    yy, xx = np.mgrid[0:200, 0:200]
    rgb[((xx + yy) // 6) % 2 == 0] *= 0.9
    wing = np.zeros((200, 200), np.uint8)
    cv2.fillConvexPoly(wing, np.array([[120, 100], [60, 40], [30, 35], [75, 105]], np.int32), 1)
    bars = (((xx - yy) // 7) % 2 == 0) & (wing > 0)
    rgb[wing > 0] = (0.30, 0.24, 0.20)
    rgb[bars] = (0.85, 0.80, 0.70)
    cv2.circle(rgb, (165, 85), 22, (0.25, 0.18, 0.12), -1)
    cv2.circle(rgb, (172, 80), 4, (0.95, 0.95, 0.9), -1)
    cv2.circle(rgb, (173, 80), 2, (0.0, 0.0, 0.0), -1)
    tex = premultiply(np.dstack([rgb, a]))
    mesh = mesh_from_mask(a, spacing, joints=joints)
    arap = ARAP(mesh, np.arange(len(joints)))
    target = wing_pose(joints, 1.0)
    dv = arap.solve(target) + (0, 60)
    target = target + (0, 60)
    rest = mesh.vertices + (0, 60)
    W, H, S = 260, 280, 2  # panel size, upscale for the picture

    def panel(verts, handles, wire: bool) -> np.ndarray:
        sky = np.zeros((H, W, 3), np.float32)
        sky[:] = np.linspace(0.55, 0.85, H)[:, None, None] * np.array([0.55, 0.75, 1.0], np.float32)
        layer = render_mesh(tex, mesh.vertices, verts, mesh.triangles, (H, W))
        over(sky, layer)
        img = cv2.resize((np.clip(sky, 0, 1) * 255).astype(np.uint8), (W * S, H * S), interpolation=cv2.INTER_CUBIC)
        if wire:
            for t in mesh.triangles:
                cv2.polylines(img, [np.round(verts[t] * S * 16).astype(np.int32)], True, (255, 255, 255), 1, cv2.LINE_AA, 4)
            for p in handles:
                cv2.circle(img, tuple(int(v) for v in np.round(p * S)), 6, (230, 30, 30), -1, cv2.LINE_AA)
        return img

    top = np.concatenate([panel(rest, joints + (0, 60), True), panel(dv, target, True), panel(dv, target, False)], 1)
    cv2.putText(top, f"rest: {len(mesh.triangles)} triangles, {len(joints)} handles", (10, 30),
                cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(top, "ARAP: wing handles turned 57 deg", (W * S + 10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(top, "rendered (remap, premultiplied)", (2 * W * S + 10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.imwrite(path, cv2.cvtColor(top, cv2.COLOR_RGB2BGR))
    print(f"wrote {path}")


def best(fn, repeats: int, number: int) -> float:
    """Best CPU seconds per call over `repeats` batches (process time: on a shared machine the wall
    clock also counts the time other jobs hold the core; cv2 runs on 1 thread, so CPU time = one core)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.process_time()
        for _ in range(number):
            fn()
        times.append((time.process_time() - t) / number)
    return min(times)


def wall(fn, number: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t) / number


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spacing", type=float, default=11.0, help="mesh spacing in px (~300 triangles at 11)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--demo", metavar="PNG", help="also write a rest-vs-deformed picture here")
    args = ap.parse_args()
    if args.demo:
        demo(args.demo, args.spacing)
    cv2.setNumThreads(1)  # one core, as the target is stated

    tex, joints = drawn_bird()
    alpha = tex[..., 3]
    t_mesh = best(lambda: mesh_from_mask(alpha, args.spacing, joints=joints), args.repeats, 3)
    mesh = mesh_from_mask(alpha, args.spacing, joints=joints)
    handles = np.arange(len(joints))
    t_fact = best(lambda: ARAP(mesh, handles), args.repeats, 5)
    arap = ARAP(mesh, handles)
    target = wing_pose(joints, 1.0) + (150, 90)  # lifted wing, moved into the frame
    t_solve = best(lambda: arap.solve(target), args.repeats, 200)
    dv = arap.solve(target)
    rest, tri = mesh.vertices, mesh.triangles

    t_full = best(lambda: render_mesh(tex, rest, dv, tri, FRAME), args.repeats, 50)
    frame = np.zeros((*FRAME, 3), np.float32)
    t_sprite = best(lambda: render_sprite(tex, rest, dv, tri), args.repeats, 50)
    sprite, at = render_sprite(tex, rest, dv, tri)
    t_over = best(lambda: over(frame, sprite, at), args.repeats, 200)

    # references, same run
    M = cv2.getRotationMatrix2D((100, 100), 20, 1.0)
    M[:, 2] += (150, 90)
    t_warp = best(
        lambda: cv2.warpAffine(tex, M, FRAME[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT),
        args.repeats, 50,
    )
    t_tri = best(lambda: per_triangle_warp(tex, rest, dv, tri, FRAME), max(2, args.repeats // 2), 3)
    ref = per_triangle_warp(tex, rest, dv, tri, FRAME)
    ours = render_mesh(tex, rest, dv, tri, FRAME)

    ms = 1e3
    print(f"mesh: {len(mesh.vertices)} vertices, {len(tri)} triangles (spacing {args.spacing} px, 200x200 bird); "
          f"handles: {len(handles)}; frame {FRAME[1]}x{FRAME[0]}; cv2 threads 1; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (others' jobs slow every number)")
    print(f"mesh_from_mask           {t_mesh * ms:8.2f} ms")
    print(f"ARAP factorise (once)    {t_fact * ms:8.2f} ms")
    print(f"ARAP solve (per frame)   {t_solve * ms:8.3f} ms")
    print(f"render_mesh, full frame  {t_full * ms:8.2f} ms  = {1 / t_full:6.0f} renders/s")
    print(f"render_sprite            {t_sprite * ms:8.2f} ms  = {1 / t_sprite:6.0f} renders/s")
    print(f"over (sprite -> frame)   {t_over * ms:8.3f} ms")
    print(f"(wall clock, same run: render_sprite {wall(lambda: render_sprite(tex, rest, dv, tri), 100) * ms:.2f} ms, "
          f"ARAP solve {wall(lambda: arap.solve(target), 300) * ms:.3f} ms)")
    print(f"solve + sprite + over    {(t_solve + t_sprite + t_over) * ms:8.2f} ms  = "
          f"{1 / (t_solve + t_sprite + t_over):6.0f} frames/s per layer")
    print(f"reference: one cv2.warpAffine of the 200x200 sprite into the frame {t_warp * ms:8.2f} ms; "
          f"render_mesh / warpAffine = {t_full / t_warp:.2f}x")
    print(f"reference: per-triangle cv2.warpAffine renderer {t_tri * ms:8.2f} ms; "
          f"render_mesh is {t_tri / t_full:.1f}x faster; max |diff| between them "
          f"{np.abs(ref - ours).max():.3f} (edges: the reference rounds boxes and leaves seams)")


if __name__ == "__main__":
    main()

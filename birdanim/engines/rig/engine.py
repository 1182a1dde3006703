"""The rig engine: the user's own bird, cut out, rigged, its wings opened and beaten, in its own scene.

    engine = RigEngine(keypoints=load_keypoint_model())      # or keypoints=None: the rig from the mask
    bird = engine.prepare(photo, box, others=[], scene="photo", size=512)   # cut-out, rig, textures
    for batch in engine.frames(bird, opts):                  # uint8 [n, H, W, 3] batches
        ...

How a frame is made (AnimatedDrawings' flow, with the bird's wings built, see wings.py):
1. `prepare`: the photo at the output size; the bird's soft mask (stages.segment); its keypoints on the
   training-style square crop; the rig (rig.py); the body texture: the bird's pixels with the folded
   wing painted over with the body's own colours and the legs faded out (a bird in flight tucks them);
   the scene with the bird's spot filled in (stages.scene).
2. Meshes: the body's mask and the painted wing are triangulated; ARAP (arap.py) is factorised once
   per mesh with the rig's joints as handles.
3. One wing-beat is sampled at K phases. At each phase the motion (motion.py) gives the wing's
   elevation, wrist flexion, primaries' fan and the body's bob and pitch; ARAP bends the wing and the
   body to those joints; the foreshortened wings and the body are rendered into one sprite: far wing
   (darkened, behind), body, near wing.
4. Each video frame picks its phase's sprite and places it on the scene along the flight path. The
   number of beats is a whole number, so frame N flows into frame 0.
"""

from __future__ import annotations

import threading
import zlib
from pathlib import Path
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from birdanim.engines.rig.arap import ARAP
from birdanim.engines.rig.mesh import mesh_from_mask
from birdanim.engines.rig.motion import FlightPath, WingBeat, path_offset, span_scale, wing_pose
from birdanim.engines.rig.render import over, premultiply, render_mesh
from birdanim.engines.rig.rig import Rig, estimate_rig
from birdanim.engines.rig.wings import bent_handles, bird_palette, folded_wing_region, paint_wing, rotate_about, rotation
from birdanim.errors import Cancelled

MAX_PHASES = 32  # sprites per beat: beyond this no eye sees the difference, and each costs ~10 ms
FAR_WING_SHADE = 0.72  # the far wing is in the body's shadow
MAX_MOVE = 3.0  # a perched bird hovers at most this many body lengths from where it took off
NEAR_ROOT = 1.0  # a near wing spread below the body starts this far from the shoulder towards the belly
BODY_JOINTS = ("head", "shoulder", "tail", "belly", "far_shoulder", "beak")
HEAD_FOLLOW = 0.3  # how much of the body's turn to a flight attitude the head follows: it keeps looking ahead


@dataclass
class Bird:
    """A prepared bird: everything the frames need, at the output's scale (photo pixels = output pixels)."""

    photo: np.ndarray  # uint8 [H, W, 3] the photo at the output size
    alpha: np.ndarray  # float32 [H, W] the bird's soft mask
    rig: Rig
    scene: np.ndarray  # uint8 [H, W, 3] what the bird flies over
    method: str  # how the mask was made
    notes: list[str] = field(default_factory=list)


def body_texture(photo: np.ndarray, alpha: np.ndarray, rig: Rig) -> tuple[np.ndarray, np.ndarray]:
    """(premultiplied RGBA float32 of the body, its alpha): for a perched bird the folded wing is
    painted over with the body's own colours (the wing flaps elsewhere now; keeping it would show two)
    and the legs below the belly fade out (a flying bird tucks them)."""
    rgb = photo.astype(np.float32)
    a = alpha.astype(np.float32).copy()
    if not rig.in_flight:
        region = folded_wing_region(alpha, rig)
        if region.sum() > 20:
            # the body's own colours flow in from around the wing's place: OpenCV's inpainting at a
            # reduced size (the fill is smooth; full size took seconds), inside the bird's box only,
            # with the background first painted the body's median so that it cannot bleed in
            ys, xs = np.nonzero(alpha > 0.05)
            y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            sub = rgb[y0:y1, x0:x1]
            inside = alpha[y0:y1, x0:x1] > 0.5
            reg = region[y0:y1, x0:x1]
            base = sub.copy()
            base[~inside] = np.median(sub[inside & ~reg], 0) if (inside & ~reg).any() else np.median(sub[inside], 0)
            k = min(1.0, 128.0 / max(sub.shape[:2]))
            small = cv2.resize(base, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
            hole = cv2.resize(reg.astype(np.uint8), (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
            filled = cv2.inpaint(np.clip(small, 0, 255).astype(np.uint8), hole, 5, cv2.INPAINT_TELEA)
            filled = cv2.resize(filled.astype(np.float32), (sub.shape[1], sub.shape[0]), interpolation=cv2.INTER_LINEAR)
            sigma = max(1.0, 0.01 * rig.length)
            detail = sub - cv2.GaussianBlur(sub, (0, 0), sigma)
            blend = cv2.GaussianBlur(reg.astype(np.float32), (0, 0), max(1.5, 0.03 * rig.length))[..., None]
            rgb[y0:y1, x0:x1] = (1 - blend) * sub + blend * (cv2.GaussianBlur(filled, (0, 0), sigma) + 0.45 * detail)
        # legs: fade out what lies further below the axis than the belly
        h, w = alpha.shape
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        d = rig.dorsal
        c = rig.centre
        depth = -((xx - c[0]) * d[0] + (yy - c[1]) * d[1])  # distance below the axis (ventral)
        along = (xx - c[0]) * rig.axis[0] + (yy - c[1]) * rig.axis[1]
        belly = float(np.dot(rig.point("belly") - c, -d))
        limit = max(belly, 0.18 * rig.length) + 0.02 * rig.length
        fade = np.clip((depth - limit) / max(2.0, 0.04 * rig.length), 0, 1)
        window = (np.abs(along + 0.1 * rig.length) < 0.3 * rig.length).astype(np.float32)  # legs hang from the belly
        if rig.legs:  # where the keypoints saw legs (an upright bird's hang near its tail): thin parts go too
            near = np.zeros_like(a)
            for x, y in rig.legs:
                cv2.circle(near, (int(round(x)), int(round(y))), int(0.3 * rig.length) + 1, 1.0, -1)
            cv2.circle(near, tuple(int(round(v)) for v in rig.point("tail")), int(0.25 * rig.length) + 1, 0.0, -1)
            near = cv2.GaussianBlur(near, (0, 0), max(1.0, 0.03 * rig.length)) * (depth > 0)  # the tail stays
            k = max(3, int(0.1 * rig.length)) | 1
            opened = cv2.morphologyEx(a, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
            a = a * (1 - near) + np.minimum(a, opened) * near
            window = np.maximum(window, near)
        a *= 1 - fade * window
    rgba = np.concatenate([np.clip(rgb, 0, 255) / 255.0, a[..., None]], axis=2)
    return premultiply(rgba), a


class _Layer:
    """A textured mesh whose vertices 0..J-1 are the given joints (ARAP handles), factorised once.

    Joints off the shape are moved onto it, and joints that land within a fraction of the mesh spacing
    of each other share one vertex (its target is the mean of theirs). A joint on a part thinner than
    the mesh's triangles (a wing's tip at 1024 px: spacing 39 px) can find no triangle to join: the mesh
    is then made finer, down to REFINE[-1] of the spacing, before giving up."""

    REFINE = (1.0, 0.7, 0.5, 0.35)

    def __init__(self, texture: np.ndarray, alpha: np.ndarray, joints: np.ndarray, spacing: float):
        self.texture = texture
        alpha = _largest_piece(alpha)
        joints = np.asarray(joints, np.float64)
        for k, f in enumerate(self.REFINE):
            try:
                self._build(alpha, joints, spacing * f)
                break
            except ValueError:
                if k == len(self.REFINE) - 1:
                    raise
        self.arap = ARAP(self.mesh, np.arange(self.slot.max() + 1))
        self.rest = self.mesh.vertices

    def _build(self, alpha: np.ndarray, joints: np.ndarray, spacing: float) -> None:
        pts = _snap(joints, alpha, 0.6 * spacing)
        self.slot = np.zeros(len(pts), int)  # joint -> vertex id
        uniq: list[np.ndarray] = []
        for i, p in enumerate(pts):
            near = [k for k, q in enumerate(uniq) if np.linalg.norm(p - q) < 0.35 * spacing]
            if near:
                self.slot[i] = near[0]
            else:
                self.slot[i] = len(uniq)
                uniq.append(p)
        self.mesh = mesh_from_mask(alpha, spacing, margin=2.0, joints=np.array(uniq))

    def solve(self, targets: np.ndarray) -> np.ndarray:
        t = np.asarray(targets, np.float64)
        n = self.slot.max() + 1
        acc = np.zeros((n, 2))
        np.add.at(acc, self.slot, t)
        acc /= np.bincount(self.slot, minlength=n)[:, None]
        return self.arap.solve(acc)

    def joint(self, vertices: np.ndarray, i: int) -> np.ndarray:
        """Where joint i is in a solved mesh."""
        return vertices[self.slot[i]]


def _spacing(alpha: np.ndarray, parts: float) -> float:
    """Mesh spacing for a shape: about `parts` vertices across its square-root area, 4-24 px."""
    return float(np.clip(np.sqrt(max((alpha > 0.5).sum(), 1.0)) / parts, 4.0, 24.0))


class RigEngine:
    """Loads nothing heavy itself: the keypoint model and the segmenter are passed in (or None)."""

    def __init__(self, keypoints=None, segmenter=None, inpainter=None, beat: WingBeat | None = None, donors="auto"):
        # keypoints: a loaded KeypointModel (None: the rig comes from the mask's shape); segmenter: a
        # loaded YoloSegmenter (None: GrabCut); inpainter: a learned inpainter (None: OpenCV fill).
        self.keypoints, self.segmenter, self.inpainter = keypoints, segmenter, inpainter
        self.beat = beat or WingBeat()
        # donors: the real wings a perched bird borrows (a donors.DonorLibrary; "auto": the shipped
        # assets/wings/donors.npz, or a path to another, loaded on first use; None: wings are painted)
        self._donors = donors

    # ------------------------------------------------------------------ photo -> bird

    def find_keypoints(self, photo: np.ndarray, box) -> tuple[dict[str, tuple[float, float]], float | None]:
        """(the visible CUB parts of the bird in `box`, in photo pixels; P(it is in flight)). ({}, None)
        without a keypoint model; the probability is None when the model has no flight probe."""
        if self.keypoints is None or box is None:
            return {}, None
        from PIL import Image

        from birdanim.engines.rig.keypoints import KEYPOINT_NAMES
        from birdanim.stages.detect import crop_square, square_window

        h, w = photo.shape[:2]
        x0, y0, side = square_window(box, w, h)
        crop = np.asarray(crop_square(Image.fromarray(photo), (x0, y0, side), 256))
        xy, vis, flying = self.keypoints.analyse(crop)
        s = side / 256.0
        return {n: (x0 + p[0] * s, y0 + p[1] * s) for n, p, v in zip(KEYPOINT_NAMES, xy, vis) if v > 0.5}, flying

    def prepare(self, photo: np.ndarray, box, others=(), scene: str = "photo", size: int = 512,
                rig: Rig | None = None) -> Bird:
        """Cut the bird out and rig it. photo: uint8 [H, W, 3] RGB at any size; box: the chosen bird's
        Box in those pixels (None: the whole photo); others: the other birds' boxes; scene: "photo",
        "sky" or "crop" (a square around the bird); size: the output's long side; rig: a rig edited by
        the user, in the photo's pixels (None: estimated)."""
        from birdanim.stages.detect import Box, crop_square, square_window
        from birdanim.stages.scene import fill_hole, sky_background
        from birdanim.stages.segment import segment_bird

        photo = np.ascontiguousarray(photo[..., :3])
        H, W = photo.shape[:2]
        if box is None:
            box = Box(0.08 * W, 0.08 * H, 0.92 * W, 0.92 * H)
        if scene == "crop":  # the square the GAN mode sees, then everything as for "photo"
            from PIL import Image

            x0, y0, side = square_window(box, W, H)
            photo = np.asarray(crop_square(Image.fromarray(photo), (x0, y0, side), side))
            shift = lambda b: Box(b.x0 - x0, b.y0 - y0, b.x1 - x0, b.y1 - y0, b.conf)  # noqa: E731
            box, others = shift(box), [shift(o) for o in others]
            if rig is not None:
                rig = rig.translated(-x0, -y0)
            H, W = photo.shape[:2]
        s = size / max(H, W)
        if abs(s - 1) > 1e-3:
            photo = cv2.resize(photo, (max(1, round(W * s)), max(1, round(H * s))),
                               interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
            scale_box = lambda b: Box(b.x0 * s, b.y0 * s, b.x1 * s, b.y1 * s, b.conf)  # noqa: E731
            box, others = scale_box(box), [scale_box(o) for o in others]
            rig = rig.scaled(s) if rig is not None else None
        kp, flying = self.find_keypoints(photo, box)  # also with the user's rig: the seeds give the cut-out the rig step showed
        # the body's keypoints are certainly bird: seeds for the cut-out (not the legs: the perch is near)
        seeds = [p for n, p in kp.items() if n not in ("left leg", "right leg")]
        cut = segment_bird(photo, box, others, self.segmenter, seeds=seeds)
        notes = list(cut.notes)
        if rig is None:
            rig = estimate_rig(cut.alpha, kp, flying)
        notes += rig.notes
        if scene == "sky":
            backdrop = sky_background(photo.shape[0], photo.shape[1], photo)
        else:
            # the hole: the bird and what the clean-up cut off it (legs), so no ghost legs stay behind
            hole = cut.alpha if getattr(cut, "hole", None) is None else np.maximum(cut.alpha, cut.hole)
            backdrop = fill_hole(photo, hole, self.inpainter)
        return Bird(photo, cut.alpha, rig, backdrop, cut.method, notes)

    # ------------------------------------------------------------------ bird -> frames

    def frames(self, bird: Bird, frames: int = 300, fps: float = 30.0, beats_per_second: float = 3.0,
               path: str = "hover", seed: int = 0, background_blur: float = 0.0, wings: str = "real", batch: int = 16,
               progress: Callable | None = None, cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        """uint8 [n, H, W, 3] batches of the looping video. background_blur: the scene's softness behind
        the bird (Gaussian sigma in px of a 512 px frame; 0: sharp); wings: "real" or "painted" (a perched
        bird's, see wing_texture). progress(fraction, last frame)."""
        beats = max(1, int(round(frames / fps * beats_per_second)))
        per_beat = frames / beats
        K = int(per_beat) if float(per_beat).is_integer() and per_beat <= MAX_PHASES else MAX_PHASES
        rng = np.random.default_rng(seed)
        phase0 = float(rng.uniform(0, 1))
        sprites = self.sprites(bird, K, cancel, wings=wings, seed=seed)
        H, W = bird.scene.shape[:2]
        scene = bird.scene
        if background_blur > 0:  # the camera follows the bird: what lies behind it goes a little soft
            scene = cv2.GaussianBlur(scene, (0, 0), background_blur * max(H, W) / 512.0)
        fpath = FlightPath(kind=path)
        anchor = self._anchor(bird, sprites, fpath)
        # per sprite: premultiplied colour in 0..255 and the background's share (1 - alpha)
        prepared = [(s[..., :3] * 255.0, 1.0 - s[..., 3:4], xy) for s, xy in sprites]
        buf = np.empty((batch, H, W, 3), np.uint8)
        n = 0
        for f in range(frames):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            phase = (f * beats / frames + phase0) % 1.0
            colour, keep, (sx, sy) = prepared[int(round(phase * K)) % K]
            dx, dy = path_offset(fpath, f / frames, W, H, colour.shape[1], bird.rig.facing, anchor[0])
            frame = buf[n]
            frame[:] = scene
            _paste(frame, colour, keep, int(round(sx + anchor[0] + dx)), int(round(sy + anchor[1] + dy)))
            n += 1
            if n == batch or f == frames - 1:
                done, buf = buf[:n], np.empty_like(buf)  # the consumer keeps the batch it was given
                yield done
                if progress is not None:
                    progress((f + 1) / frames, done[-1])
                n = 0

    def _anchor(self, bird: Bird, sprites, fpath: FlightPath) -> np.ndarray:
        """Where the sprites' origin (the body's centre) goes: the bird's own place (a perched bird: lifted
        off its perch and into the most open part of the scene near it, see _open_place), moved just
        enough that the hovering bird's whole wing-beat stays in the frame."""
        H, W = bird.scene.shape[:2]
        c = bird.rig.centre.copy()
        if not bird.rig.in_flight and fpath.kind == "hover":  # it has taken off: up from its perch
            c[1] -= fpath.lift * bird.rig.length
        x0 = min(sx for _, (sx, _sy) in sprites)
        y0 = min(sy for _, (_sx, sy) in sprites)
        x1 = max(sx + s.shape[1] for s, (sx, _sy) in sprites)
        y1 = max(sy + s.shape[0] for s, (_sx, sy) in sprites)
        drift = fpath.drift * min(W, H) if fpath.kind == "hover" else 0.0
        if not bird.rig.in_flight and fpath.kind == "hover":
            c = _open_place(bird.scene, c, (x0, y0, x1, y1), drift, bird.rig.length)
        for axis, lo, hi, size in ((0, x0, x1, W), (1, y0, y1, H)):
            m = drift * (1.0 if axis == 0 else 0.5) + 2
            if hi - lo + 2 * m > size:  # larger than the frame: centre it
                c[axis] = size / 2 - (lo + hi) / 2
            else:
                c[axis] = np.clip(c[axis], m - lo, size - m - hi)
        return c

    def sprites(self, bird: Bird, K: int, cancel: threading.Event | None = None, wings: str = "real",
                seed: int = 0, donor: int | None = None) -> list[tuple[np.ndarray, tuple[int, int]]]:
        """K premultiplied RGBA sprites, one per phase of a beat, each with its top-left pixel relative
        to the body's centre. wings: "real" or "painted" (see wing_texture); seed picks the donor."""
        rig = bird.rig
        centre = rig.centre
        L = rig.length
        beat = self.beat
        fpath = FlightPath()
        level = 0.0 if rig.in_flight else fpath.level * (fpath.attitude - rig.angle)
        scale = self._fit_scale(bird, level)

        tex, a = body_texture(bird.photo, bird.alpha, rig)
        given = np.array([rig.point(j) for j in BODY_JOINTS])
        own_wings = rig.in_flight
        if own_wings:  # the wing tips are handles of the body's mesh too
            body = _Layer(tex, a, np.concatenate([given, _wing_tips(bird.alpha, rig)]), spacing=_spacing(a, 12))
        else:
            body = _Layer(tex, a, given, spacing=_spacing(a, 10))
            wing = self.wing_texture(bird, rig.wing_length * L * scale, wings, seed, donor)
            names = list(wing.handles)
            wl = _Layer(wing.rgba, wing.rgba[..., 3], np.array([wing.handles[k] for k in names]), spacing=max(4.0, wing.length / 9))
            # the wing's joints where its mesh holds them (a handle off the shape was moved onto it)
            wing.handles = {n: wl.rest[wl.slot[i]].copy() for i, n in enumerate(names)}
            far_tex = wing.rgba.copy()
            far_tex[..., :3] *= FAR_WING_SHADE
        # the joints where the body's mesh holds them: a joint off the shape, or too near its edge, was
        # moved onto it; targets from the given points would stretch the mesh (a bill pulled longer)
        held = body.rest[body.slot]
        joints = held[: len(BODY_JOINTS)]
        if own_wings:
            tips = held[len(BODY_JOINTS):]

        sprites = []
        for k in range(K):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            pose = wing_pose(beat, k / K)
            # the body's placement at this phase: levelled towards a flight attitude, bobbing and pitching
            nose_up = level + pose.pitch
            R = rotation(-nose_up * rig.facing) * scale
            lift = (R @ rig.dorsal) * pose.bob * L  # R carries the scale

            def place(p):
                return (np.asarray(p) - centre) @ R.T + lift

            targets = place(joints)
            steady = (joints[0] - centre) @ (rotation(-level * rig.facing) * scale).T
            targets[0] = 0.7 * steady + 0.3 * targets[0]  # the head keeps still while the body bobs
            # an upright perched bird levels its body to fly, but keeps its bill pointing where it looked
            bill = (joints[5] - joints[0]) @ (rotation(-HEAD_FOLLOW * level * rig.facing) * scale).T
            targets[5] = targets[0] + bill
            tail_pivot = place(centre - 0.15 * L * rig.axis)
            targets[2] = rotate_about(targets[2], tail_pivot, pose.tail * rig.facing)
            layers = []
            if own_wings:
                tip_targets = []
                for tip in tips:
                    root = place(joints[1])
                    v = place(tip) - root
                    side = -np.sign(v[0]) if abs(v[0]) > 1e-6 else 1.0
                    ang = side * (0.5 * (beat.top - beat.bottom) * np.cos(2 * np.pi * k / K) * 0.45)
                    tip_targets.append(root + rotation(ang) @ v * (0.85 + 0.15 * abs(np.cos(2 * np.pi * k / K))))
                vb = body.solve(np.concatenate([targets, np.array(tip_targets)]))
                layers.append((body.texture, body.rest, vb, body.mesh.triangles))
            else:
                vb = body.solve(targets)
                bent = bent_handles(wing, pose.flex, pose.fan)
                vw = wl.solve(np.array([bent[n] for n in names]))
                sweep_dir = rotate_about(R @ rig.dorsal, np.zeros(2), beat.sweep * rig.facing) / max(scale, 1e-6)
                chord_dir = -(R @ rig.axis) / max(scale, 1e-6)
                for near, root_name, texture in ((False, "far_shoulder", far_tex), (True, "shoulder", wing.rgba)):
                    sp = span_scale(pose.elevation, beat.view_tilt, near)
                    root = body.joint(vb, BODY_JOINTS.index(root_name))
                    if near and sp < 0:  # spread to the belly's side: it leaves the body from its flank, not its back
                        root = root + NEAR_ROOT * (body.joint(vb, BODY_JOINTS.index("belly")) - root)
                    rel = vw - wing.handles["shoulder"]
                    pts = root + np.outer(rel[:, 0] * sp, sweep_dir) + np.outer(rel[:, 1], chord_dir)
                    layer = (texture, wl.rest, pts, wl.mesh.triangles)
                    if near:
                        layers.append(layer)
                    else:
                        layers.insert(0, layer)
                # the near wing over the body (seen from above); behind it (seen from below) the body shows
                # whole, which 16 perched photos scored identity +0.05 but P(flight) -0.25: not kept
                layers.insert(1, (body.texture, body.rest, vb, body.mesh.triangles))
            sprites.append(_composite(layers))
        return sprites

    @property
    def donors(self):
        if isinstance(self._donors, (str, Path)):
            from birdanim.engines.rig.donors import load_donors

            try:
                self._donors = load_donors(None if self._donors == "auto" else self._donors)
            except (OSError, ValueError, KeyError):  # an unreadable file: the wings are painted instead
                self._donors = None
        return self._donors

    def wing_texture(self, bird: Bird, length: float, wings: str = "real", seed: int = 0, donor: int | None = None):
        """The spread wing a perched bird beats: "real" (a donor's outline and feathers in this bird's
        colours, the donor picked by `seed` unless given; painted when no donor library is there) or
        "painted" (wings.paint_wing)."""
        if wings == "real" and self.donors is not None and len(self.donors):
            from birdanim.engines.rig.donors import choose, donor_wing, plumage_ramp

            ramp = plumage_ramp(bird.photo, bird.alpha, bird.rig)
            if donor is None:  # the bird's own colours make the key: each bird its wing, the same photo the same
                donor = choose(self.donors, seed, key=zlib.crc32(np.round(ramp).astype(np.uint8).tobytes()))
            return donor_wing(self.donors, donor, ramp, length)
        return paint_wing(bird_palette(bird.photo, bird.alpha, bird.rig), length, seed=0)

    def _fit_scale(self, bird: Bird, level: float) -> float:
        """Shrink the bird when its spread wings would not fit the frame (a bird that fills its photo)."""
        H, W = bird.alpha.shape
        rig = bird.rig
        L = rig.length
        ys, xs = np.nonzero(bird.alpha > 0.5)
        pts = np.stack([xs, ys], 1) - rig.centre
        pts = pts @ rotation(-level * rig.facing).T
        ext = np.abs(pts).max(0)
        if not rig.in_flight:
            reach = np.linalg.norm(rig.point("shoulder") - rig.centre) + rig.wing_length * L * 1.05
            ext = np.maximum(ext, [0.45 * reach, reach])
        need = 2 * ext * 1.08
        return float(min(1.0, 0.92 * W / need[0], 0.92 * H / need[1]))


def _open_place(scene: np.ndarray, start: np.ndarray, extent, drift: float, length: float) -> np.ndarray:
    """Where a bird that has left its perch hovers: the place near `start` (the sprites' origin, px)
    whose surroundings are the most open (the least fine detail: sky, water, a blurred background
    rather than twigs and leaves), with the whole beat (`extent`: x0, y0, x1, y1 of the sprites around
    their origin) and its drift inside the frame."""
    H, W = scene.shape[:2]
    x0, y0, x1, y1 = extent
    bw, bh = x1 - x0, y1 - y0
    mx, my = drift + 2, 0.5 * drift + 2
    if bw + 2 * mx >= W or bh + 2 * my >= H:
        return start
    k = min(1.0, 160.0 / max(H, W))  # work at a reduced size: the choice is coarse
    g = cv2.cvtColor(cv2.resize(scene, None, fx=k, fy=k, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY).astype(np.float32)
    g = cv2.GaussianBlur(g, (0, 0), 0.7)
    detail = np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1))
    # mean detail over what the eye takes in around the bird: the beat's box and a margin
    pad = 0.25 * max(bw, bh)
    kw, kh = max(1, int(round((bw + pad) * k))) | 1, max(1, int(round((bh + pad) * k))) | 1
    clutter = cv2.boxFilter(detail, -1, (kw, kh), borderType=cv2.BORDER_REFLECT)
    clutter /= float(np.median(detail)) + float(detail.mean()) + 1e-3
    yy, xx = np.mgrid[0:g.shape[0], 0:g.shape[1]].astype(np.float32) / k  # box centre, full-size px
    ox, oy = xx - (x0 + x1) / 2, yy - (y0 + y1) / 2  # the origin for that box centre
    ok = (ox + x0 >= mx) & (ox + x1 <= W - mx) & (oy + y0 >= my) & (oy + y1 <= H - my)
    dist = np.hypot(ox - start[0], oy - start[1]) / max(length, 1.0)
    ok &= dist <= MAX_MOVE  # it hovers near its perch, not across a wide landscape
    if not ok.any():
        return start
    cost = np.where(ok, clutter + 0.15 * dist, np.inf)
    i = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return np.array([ox[i], oy[i]])


def _paste(frame: np.ndarray, colour: np.ndarray, keep: np.ndarray, x: int, y: int) -> None:
    """frame (uint8 [H, W, 3], in place) = premultiplied colour + frame * keep, over the sprite's
    region (clipped to the frame); only that region is touched."""
    H, W = frame.shape[:2]
    h, w = colour.shape[:2]
    fx0, fy0, fx1, fy1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    sx0, sy0 = fx0 - x, fy0 - y
    roi = frame[fy0:fy1, fx0:fx1]
    c = colour[sy0 : sy0 + fy1 - fy0, sx0 : sx0 + fx1 - fx0]
    k = keep[sy0 : sy0 + fy1 - fy0, sx0 : sx0 + fx1 - fx0]
    roi[:] = np.clip(c + roi * k + 0.5, 0, 255).astype(np.uint8)


def _largest_piece(alpha: np.ndarray) -> np.ndarray:
    """alpha kept only around its largest connected piece (with its soft edge), zero elsewhere."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((alpha > 0.5).astype(np.uint8), connectivity=8)
    if n <= 2:
        return alpha
    big = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    return alpha * cv2.dilate(big, np.ones((7, 7), np.uint8))


def _snap(points: np.ndarray, alpha: np.ndarray, depth: float) -> np.ndarray:
    """Each point moved onto the nearest pixel at least `depth` px inside the shape's largest piece
    (alpha > 0.5) when it is not already there (a joint the user placed beside the bird, or a guess on a
    thin part the mesh peels off), so it becomes a vertex of the one connected mesh."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((alpha > 0.5).astype(np.uint8), connectivity=8)
    if n < 2:
        return points
    big = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    dist = cv2.distanceTransform(big, cv2.DIST_L2, 5)
    depth = min(depth, 0.5 * float(dist.max()))
    ys, xs = np.nonzero(dist >= depth)
    deep = np.stack([xs, ys], 1).astype(np.float64)
    out = points.copy()
    h, w = alpha.shape
    for i, p in enumerate(points):
        x, y = int(round(p[0])), int(round(p[1]))
        if not (0 <= x < w and 0 <= y < h and dist[y, x] >= depth):
            out[i] = deep[np.argmin(((deep - p) ** 2).sum(1))]
    return out


def _composite(layers) -> tuple[np.ndarray, tuple[int, int]]:
    """Render the layers (texture, rest, deformed, triangles), back to front, into one sprite."""
    allv = np.concatenate([v for _, _, v, _ in layers])
    x0, y0 = np.floor(allv.min(0)).astype(int) - 3
    x1, y1 = np.ceil(allv.max(0)).astype(int) + 3
    canvas = np.zeros((y1 - y0, x1 - x0, 4), np.float32)
    for tex, rest, v, tris in layers:
        over(canvas, render_mesh(tex, rest, v, tris, canvas.shape[:2], (x0, y0)))
    return canvas, (int(x0), int(y0))


def _wing_tips(alpha: np.ndarray, rig: Rig) -> np.ndarray:
    """A flying bird's wing tips: the mask's furthest points on either side of the body's axis (one or
    two; a side is kept when it reaches out further than a quarter of the body length)."""
    ys, xs = np.nonzero(alpha > 0.5)
    pts = np.stack([xs, ys], 1).astype(np.float64)
    n = np.array([-rig.axis[1], rig.axis[0]])
    rel = (pts - rig.centre) @ n
    tips = []
    for sgn in (1, -1):
        far = rel * sgn
        if far.max() > 0.25 * rig.length:
            sel = far >= np.quantile(far, 0.995)
            tips.append(pts[sel].mean(0))
    if not tips:
        tips.append(rig.point("shoulder") + rig.dorsal * 0.3 * rig.length)
    # a tip must lie inside the mask to become a mesh vertex: pull it in a little
    return np.array([t + 0.04 * (rig.centre - t) for t in tips])

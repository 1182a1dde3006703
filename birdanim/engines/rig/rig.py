"""The bird's rig: a few named joints in the photo's pixels, estimated from the mask and the keypoints.

A rig is data, not code (as in AnimatedDrawings' char_cfg.yaml): it is saved as JSON, the app shows it
over the photo and lets a person move its joints, and the renderer only reads it.

    rig = estimate_rig(alpha, keypoints)      # keypoints: {name: (x, y)} of the visible CUB parts, or {}
    rig.to_json(); Rig.from_json(text)

Joints (x, y in photo pixels):
    beak          tip of the bill
    head          centre of the head (crown / eyes)
    tail          tip of the tail
    shoulder      where the near wing (the one towards the camera) attaches, on the back
    far_shoulder  where the far wing attaches (partly hidden behind the body)
    belly         lowest point of the body proper; below it are legs and perch, tucked away in flight

Derived: `axis` (unit vector tail -> head), `facing` (+1 when the head is to the right of the tail),
`dorsal` (unit vector from the body's axis towards its back), `length` (tail to beak, px).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

JOINTS = ("beak", "head", "tail", "shoulder", "far_shoulder", "belly")


@dataclass
class Rig:
    beak: tuple[float, float]
    head: tuple[float, float]
    tail: tuple[float, float]
    shoulder: tuple[float, float]
    far_shoulder: tuple[float, float]
    belly: tuple[float, float]
    near_wing: str = "left"  # the bird's own side that faces the camera ("left" | "right"), as CUB names it
    in_flight: bool = False  # the photo shows the wings spread: the engine beats the bird's own wings
    wing_length: float = 1.15  # one wing's length (shoulder to tip) as a share of the body length
    source: str = "keypoints"  # how the joints were found: "keypoints", "mask" or "user"
    legs: tuple = ()  # the visible legs' keypoints ((x, y), ...): a flying bird tucks them away
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ derived geometry

    def point(self, name: str) -> np.ndarray:
        return np.asarray(getattr(self, name), dtype=np.float64)

    @property
    def axis(self) -> np.ndarray:
        d = self.point("head") - self.point("tail")
        n = np.linalg.norm(d)
        return d / n if n > 1e-6 else np.array([1.0, 0.0])

    @property
    def facing(self) -> int:
        dx = self.point("beak")[0] - self.point("tail")[0]
        return 1 if dx >= 0 else -1

    @property
    def dorsal(self) -> np.ndarray:
        """Unit normal of the axis on the back's side (the side away from the belly)."""
        a = self.axis
        n = np.array([a[1], -a[0]])
        side = np.dot(self.point("belly") - self.centre, n)
        return -n if side > 0 else n

    @property
    def centre(self) -> np.ndarray:
        return 0.5 * (self.point("head") + self.point("tail"))

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.point("beak") - self.point("tail")))

    @property
    def angle(self) -> float:
        """Angle of the body above the horizontal in degrees, measured towards where the bird faces
        (0: level, 90: upright, negative: head down)."""
        a = self.axis
        return float(np.degrees(np.arctan2(-a[1], a[0] * self.facing)))

    # ------------------------------------------------------------------ editing and saving

    def moved(self, name: str, xy) -> Rig:
        if name not in JOINTS:
            raise ValueError(f"unknown joint {name!r}; joints are {', '.join(JOINTS)}")
        d = asdict(self)
        d[name] = (float(xy[0]), float(xy[1]))
        d["source"] = "user"
        return Rig(**d)

    def scaled(self, s: float, dx: float = 0.0, dy: float = 0.0) -> Rig:
        """Every joint at (x * s + dx, y * s + dy): the rig of the photo resized and/or cropped."""
        d = asdict(self)
        for j in JOINTS:
            d[j] = (d[j][0] * s + dx, d[j][1] * s + dy)
        d["legs"] = tuple((x * s + dx, y * s + dy) for x, y in self.legs)
        return Rig(**d)

    def translated(self, dx: float, dy: float) -> Rig:
        return self.scaled(1.0, dx, dy)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Rig:
        d = json.loads(text)
        for j in JOINTS:
            d[j] = tuple(float(v) for v in d[j])
        d["legs"] = tuple((float(p[0]), float(p[1])) for p in (d.get("legs") or ()))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# ---------------------------------------------------------------------- estimation


def _mean(points: list) -> np.ndarray | None:
    pts = [np.asarray(p, np.float64) for p in points if p is not None]
    return np.mean(pts, axis=0) if pts else None


def _extreme(pts: np.ndarray, direction: np.ndarray, q: float = 0.995) -> np.ndarray:
    """The mask point furthest along `direction` (a robust quantile, averaged over the extreme few)."""
    proj = pts @ direction
    cut = np.quantile(proj, q)
    return pts[proj >= cut].mean(0)


def _inside(alpha: np.ndarray, p: np.ndarray, toward: np.ndarray) -> np.ndarray:
    """p moved along the segment to `toward` until it lies on the mask (alpha > 0.5)."""
    h, w = alpha.shape
    for t in np.linspace(0, 1, 21):
        q = p + t * (toward - p)
        x, y = int(round(q[0])), int(round(q[1]))
        if 0 <= x < w and 0 <= y < h and alpha[y, x] > 0.5:
            return q
    return toward


def _mask_extent(pts: np.ndarray, origin: np.ndarray, direction: np.ndarray) -> float:
    """How far the mask reaches from `origin` along `direction` (within a thin band)."""
    rel = pts - origin
    along = rel @ direction
    across = np.abs(rel @ np.array([-direction[1], direction[0]]))
    band = along[(across < 3.0) & (along > 0)]
    return float(band.max()) if band.size else 0.0


def _solidity(alpha: np.ndarray) -> float:
    """Area of the shape over the area of its convex hull (1 for a convex blob)."""
    import cv2

    m = (alpha > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return 1.0
    c = max(contours, key=cv2.contourArea)
    hull = cv2.contourArea(cv2.convexHull(c))
    return float(cv2.contourArea(c) / hull) if hull > 0 else 1.0


def estimate_rig(alpha: np.ndarray, keypoints: dict[str, tuple[float, float]] | None = None,
                 flying: float | None = None) -> Rig:
    """Joints from the bird's mask ([H, W] 0..1) and its visible CUB keypoints in the same pixels
    (names as in birdanim.engines.rig.keypoints.KEYPOINT_NAMES; missing parts left out). Without
    keypoints the mask's principal axis is used and the head is taken to be its upper end. flying: the
    keypoint model's P(the bird is in flight); None: judged from the outline alone (wings reaching far
    from the body's axis, or a hollow silhouette), which mistakes a round or fluffed-up bird for one."""
    ys, xs = np.nonzero(alpha > 0.5)
    if xs.size < 20:
        raise ValueError("the bird's mask is empty")
    pts = np.stack([xs, ys], 1).astype(np.float64)
    centroid = pts.mean(0)
    kp = {k: np.asarray(v, np.float64) for k, v in (keypoints or {}).items()}
    notes: list[str] = []

    head = _mean([kp.get(n) for n in ("crown", "forehead", "left eye", "right eye", "nape")])
    beak, tail = kp.get("beak"), kp.get("tail")
    source = "keypoints"
    if head is None or tail is None or (beak is None and "throat" not in kp):
        source = "mask"
        # principal axis of the mask; the head is the end that is higher in the photo
        cov = np.cov((pts - centroid).T)
        evals, evecs = np.linalg.eigh(cov)
        a = evecs[:, np.argmax(evals)]
        a = a if a[1] < 0 or (abs(a[1]) < 1e-3 and a[0] > 0) else -a  # towards the upper end
        head_end, tail_end = _extreme(pts, a), _extreme(pts, -a)
        if head is None:
            head = centroid + 0.75 * (head_end - centroid)
        if tail is None:
            tail = tail_end
        if beak is None:
            beak = head_end
        notes.append("the rig was guessed from the bird's outline; check the joints")
    if beak is None:
        beak = kp["throat"] + 0.6 * (kp["throat"] - (kp.get("breast", centroid)))
    if np.linalg.norm(head - tail) < 4:
        tail = centroid - (head - centroid)
    axis = (head - tail) / max(np.linalg.norm(head - tail), 1e-6)
    normal = np.array([axis[1], -axis[0]])

    # the back's side: towards the back keypoint, else away from belly/breast, else upwards in the photo
    if "back" in kp:
        side = np.dot(kp["back"] - centroid, normal)
    elif "belly" in kp or "breast" in kp:
        side = -np.dot(_mean([kp.get("belly"), kp.get("breast")]) - centroid, normal)
    else:  # the bill points forward, away from the back; a level bill: the back is up
        bill = np.dot(beak - head, normal)
        side = -bill if abs(bill) > 0.05 * np.linalg.norm(beak - head) + 1e-6 else -normal[1]
    dorsal = normal if side >= 0 else -normal
    length = float(np.linalg.norm(beak - tail))

    # body thickness across the axis at the shoulder station
    station = tail + 0.62 * (head - tail)
    up = _mask_extent(pts, station, dorsal)
    down = _mask_extent(pts, station, -dorsal)
    shoulder = station + dorsal * max(0.55 * up, 1.0)
    if "back" in kp:  # CUB's back point lies between the shoulders: pull towards it
        shoulder = 0.5 * shoulder + 0.5 * kp["back"]
    shoulder = _inside(alpha, shoulder, station)
    far_shoulder = shoulder + dorsal * 0.06 * length + axis * 0.03 * length

    belly = kp.get("belly")
    if belly is None:
        mid = tail + 0.45 * (head - tail)
        belly = mid - dorsal * _mask_extent(pts, mid, -dorsal)
    if down <= 0:
        down = float(np.dot(belly - station, -dorsal))

    # which wing faces the camera, and is the bird already flying?
    facing = 1 if beak[0] - tail[0] >= 0 else -1
    lw, rw = kp.get("left wing"), kp.get("right wing")
    if lw is not None and rw is None:
        near = "left"
    elif rw is not None and lw is None:
        near = "right"
    else:  # profile to the right shows the bird's left side; to the left, its right side
        near = "left" if facing > 0 else "right"
    # a folded wing lies along the body, near its axis; a spread one reaches far from it
    if flying is not None:
        in_flight = flying > 0.5
    else:
        spread = [np.abs(np.dot(w - tail, normal)) for w in (lw, rw) if w is not None]
        extent_across = float(np.ptp(pts @ normal))
        in_flight = bool(extent_across > 1.1 * length) or bool(spread and max(spread) > 0.32 * length)
        if source == "mask" and _solidity(alpha) < 0.6:  # long thin wings make a hollow silhouette
            in_flight = True
    if in_flight:
        notes.append("the bird looks like it is already flying: its own wings will beat")

    return Rig(
        beak=tuple(beak), head=tuple(head), tail=tuple(tail), shoulder=tuple(shoulder),
        far_shoulder=tuple(far_shoulder), belly=tuple(belly), near_wing=near, in_flight=in_flight,
        source=source, notes=notes,
        legs=tuple((float(p[0]), float(p[1])) for p in (kp.get("left leg"), kp.get("right leg")) if p is not None),
    )

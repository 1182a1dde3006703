"""Motions as data: a wing-beat cycle and a flight path, each a small typed config.

A beat's phase p runs 0..1: the down-stroke takes `downstroke` of the period (about 60% in real flight,
Tobalske 2007), from the top of the stroke to the bottom; the up-stroke brings the wing back with the
wrist flexed and the primaries closed. The wing's elevation (degrees above the horizontal, seen from the
side) sets how much of it the camera sees: a wing pointing at the camera is foreshortened to a sliver.
The body rides against the wings: it rises on the down-stroke and sinks on the up-stroke, pitching a
little; the head stays steady (birds stabilise their gaze).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WingBeat:
    top: float = 60.0  # elevation at the top of the stroke, degrees
    bottom: float = -40.0  # elevation at the bottom of the stroke
    downstroke: float = 0.6  # share of the period spent on the down-stroke
    # the camera looks down on the beating wings (90: from straight above, the body's profile kept): the
    # near wing spreads to the belly's side, the far wing to the back's, as in most photos of birds in
    # flight; lower tilts show the beat from the side (both wings up together, one behind the other)
    view_tilt: float = 90.0
    sweep: float = 30.0  # the wings' line turned from the body's perpendicular, degrees (+: the upper wing towards the head)
    flex_up: float = 1.0  # wrist flexion at mid up-stroke (0..1)
    bob: float = 0.045  # body rise and fall, as a share of the body length
    pitch: float = 4.0  # body pitch swing, degrees
    tail_flex: float = 6.0  # tail swing, degrees


@dataclass(frozen=True)
class WingPose:
    elevation: float  # degrees above horizontal
    flex: float  # 0 spread .. 1 flexed
    fan: float  # 1 primaries open .. 0 closed
    bob: float  # body offset along the back's direction, share of the body length (+ = up)
    pitch: float  # body rotation, degrees (+ = nose up)
    tail: float  # tail rotation, degrees


def _ease(t: float) -> float:
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(t, 0.0, 1.0))


def wing_pose(beat: WingBeat, phase: float) -> WingPose:
    """The pose at phase 0..1 (0 = top of the stroke). Smooth and periodic: pose(0) == pose(1)."""
    p = phase % 1.0
    d = beat.downstroke
    if p < d:  # down-stroke: wing spread, primaries open, the body lifted
        t = p / d
        elev = beat.top + (beat.bottom - beat.top) * _ease(t)
        flex = beat.flex_up * 0.35 * (1 - _ease(min(1.0, t / 0.3)))  # still unfolding at the top
        fan = 0.6 + 0.4 * np.sin(np.pi * t)
    else:  # up-stroke: wrist flexed, primaries closed
        t = (p - d) / (1 - d)
        elev = beat.bottom + (beat.top - beat.bottom) * _ease(t)
        flex = beat.flex_up * (np.sin(np.pi * t) ** 0.7 * 1.0 + 0.35 * _ease(max(0.0, (t - 0.7) / 0.3)))
        fan = 0.6 - 0.45 * np.sin(np.pi * t)
    # body: force peaks mid down-stroke, so the body is highest just after it
    body = np.sin(2 * np.pi * (p - 0.15))
    return WingPose(float(elev), float(np.clip(flex, 0, 1)), float(np.clip(fan, 0, 1)), float(beat.bob * body),
                    float(beat.pitch * np.sin(2 * np.pi * (p - 0.3))), float(beat.tail_flex * np.sin(2 * np.pi * (p + 0.1))))


def span_scale(elevation: float, tilt: float, near: bool) -> float:
    """Signed share of the wing's length seen along the 'up' of the body (from the side, camera tilted
    down by `tilt`): +1 straight up, 0 pointing at (or away from) the camera, negative below the body."""
    return float(np.sin(np.radians(elevation - tilt if near else elevation + tilt)))


@dataclass(frozen=True)
class FlightPath:
    kind: str = "hover"  # "hover": in place with a slow drift; "cross": across the frame and round again
    drift: float = 0.03  # hover: size of the slow figure-of-eight, share of the frame's short side
    lift: float = 0.5  # hover: how far a perched bird rises from its perch, share of its body length
    rise: float = 0.06  # cross: height of the path's gentle wave, share of the frame's height
    level: float = 0.9  # how far the body turns from its perched angle towards a flight attitude (0..1)
    attitude: float = 12.0  # the flight attitude: degrees nose-up


def path_offset(path: FlightPath, t: float, frame_w: int, frame_h: int, sprite_w: float, facing: int,
                start_x: float) -> tuple[float, float]:
    """Offset (dx, dy) px of the bird from its place in the photo (its centre at `start_x`) at loop
    time t (0..1, periodic; offset (0, 0) at t = 0)."""
    if path.kind == "hover":
        a = path.drift * min(frame_w, frame_h)
        return a * np.sin(2 * np.pi * t), 0.5 * a * np.sin(4 * np.pi * t)
    if path.kind == "cross":
        # leave the frame on the side it faces and come back in from the other: seamless at the wrap
        travel = frame_w + sprite_w  # centre to centre: from fully out on one side to fully out on the other
        u0 = facing * (start_x - frame_w / 2) / travel
        x = frame_w / 2 + facing * ((t + u0 + 0.5) % 1.0 - 0.5) * travel
        return x - start_x, path.rise * frame_h * np.sin(2 * np.pi * t)
    raise ValueError(f"unknown path {path.kind!r}")

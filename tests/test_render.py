"""Textured mesh rendering: identity, translation, no cracks, compositing."""

from __future__ import annotations

import cv2
import numpy as np

from birdanim.engines.rig.arap import ARAP
from birdanim.engines.rig.mesh import mesh_from_mask
from birdanim.engines.rig.render import over, premultiply, render_mesh, render_sprite


def textured_blob(size=120):
    a = np.zeros((size, size), np.float32)
    cv2.ellipse(a, (size // 2, size // 2), (size * 2 // 5, size // 4), 20, 0, 360, 1, -1)
    a = cv2.GaussianBlur(a, (0, 0), 1.0)
    rng = np.random.default_rng(0)
    rgb = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 1.5)
    return premultiply(np.dstack([rgb, a])), a


def test_identity_reproduces_texture():
    tex, a = textured_blob()
    mesh = mesh_from_mask(a, 10.0)
    out = render_mesh(tex, mesh.vertices, mesh.vertices, mesh.triangles, a.shape)
    assert np.abs(out - tex).max() < 1e-4


def test_translation_shifts():
    tex, a = textured_blob()
    mesh = mesh_from_mask(a, 10.0)
    out = render_mesh(tex, mesh.vertices, mesh.vertices + (30, 17), mesh.triangles, (200, 220))
    assert np.abs(out[17:137, 30:150] - tex).max() < 1e-4
    assert abs(out.sum() - tex.sum()) < 1e-2
    # the same with an offset window, and as a sprite placed with `over`
    win = render_mesh(tex, mesh.vertices, mesh.vertices + (30, 17), mesh.triangles, (120, 120), offset=(30, 17))
    assert np.abs(win - tex).max() < 1e-4
    sprite, at = render_sprite(tex, mesh.vertices, mesh.vertices + (30, 17), mesh.triangles)
    canvas = np.zeros((200, 220, 4), np.float32)
    over(canvas, sprite, at)
    assert np.abs(canvas - out).max() < 1e-5


def test_no_cracks_in_a_deformed_solid():
    """A solid rectangle (alpha 1), bent by ARAP: every pixel well inside the bent shape has alpha 1."""
    a = np.zeros((60, 200), np.float32)
    a[20:40, 20:180] = 1
    tex = premultiply(np.dstack([np.full((60, 200, 3), 0.5, np.float32), a]))
    joints = np.array([[22.0, 24.0], [22.0, 35.0], [177.0, 24.0], [177.0, 35.0]])
    mesh = mesh_from_mask(a, 7.0, margin=1.0, joints=joints)
    arap = ARAP(mesh, np.arange(4))
    th = np.radians(40)
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    target = joints.copy()
    target[2:] = (joints[2:] - joints[:2].mean(0)) @ R.T + joints[:2].mean(0)
    dv = arap.solve(target) + (0, 80)
    out = render_mesh(tex, mesh.vertices, dv, mesh.triangles, (220, 220))
    # the solid region's image: rasterise the deformed inner triangles, shrink by 2 px
    solid = np.zeros((220, 220), np.uint8)
    inner = mesh.vertices[mesh.triangles].mean(1)
    inner = (inner[:, 0] > 21) & (inner[:, 0] < 178) & (inner[:, 1] > 21) & (inner[:, 1] < 38)
    for t in mesh.triangles[inner]:
        cv2.fillConvexPoly(solid, np.round(dv[t] * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    solid = cv2.erode(solid, np.ones((5, 5), np.uint8)).astype(bool)
    assert solid.sum() > 1500
    assert np.abs(out[..., 3][solid] - 1).max() < 1e-4
    assert np.abs(out[..., 0][solid] - 0.5).max() < 1e-4


def test_over_composite():
    dst = np.full((10, 10, 3), 0.2, np.float32)
    src = np.zeros((4, 4, 4), np.float32)
    src[..., 3] = 0.5
    src[..., :3] = 0.5 * 1.0  # white at half coverage, premultiplied
    over(dst, src, (8, -2))  # clipped at the corner
    np.testing.assert_allclose(dst[0:2, 8:10], 0.6)
    assert (dst[2:, :] == 0.2).all() and (dst[:, :8] == 0.2).all()


def test_soft_edges_have_no_dark_fringe():
    """White with a soft alpha, rotated through the mesh and composited over white: white everywhere
    (premultiplied sampling: transparent texels carry no colour into the edge)."""
    tex, a = textured_blob()
    tex[..., :3] = a[..., None]  # premultiplied white
    mesh = mesh_from_mask(a, 10.0)
    th = np.radians(30)
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    dv = (mesh.vertices - 60) @ R.T + 70
    layer = render_mesh(tex, mesh.vertices, dv, mesh.triangles, (140, 140))
    assert layer[..., 3].max() > 0.99 and (layer[..., 3] > 0.01).sum() > 3000
    bg = np.ones((140, 140, 3), np.float32)
    over(bg, layer)
    assert np.abs(bg - 1).max() < 1e-4

"""Meshes from drawn masks and outlines: coverage, orientation, no degenerate triangles, joints."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from birdanim.engines.rig.mesh import mesh_from_mask, mesh_from_polygon, spacing_for


def bird_mask(size: int = 200, blur: float = 1.0) -> np.ndarray:
    """A soft bird-like blob: body ellipse, head disc, tail wedge."""
    a = np.zeros((size, size), np.float32)
    s = size / 200
    cv2.ellipse(a, (int(100 * s), int(110 * s)), (int(70 * s), int(38 * s)), 10, 0, 360, 1, -1)
    cv2.circle(a, (int(165 * s), int(80 * s)), int(24 * s), 1, -1)
    cv2.fillConvexPoly(a, (np.array([[40, 110], [5, 95], [5, 135]]) * s).astype(np.int32), 1)
    return cv2.GaussianBlur(a, (0, 0), blur) if blur else a


def covered(mesh, shape) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    for t in mesh.triangles:
        cv2.fillConvexPoly(m, np.round(mesh.vertices[t] * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    return m.astype(bool)


def check_quality(mesh):
    assert mesh.vertices.dtype == np.float64 and mesh.vertices.shape[1] == 2
    assert mesh.triangles.dtype == np.int32 and mesh.triangles.shape[1] == 3
    area = mesh.signed_areas()
    assert (area > 0).all(), "every triangle positively oriented"
    assert area.min() > 1e-3, "no degenerate triangles"
    assert np.unique(mesh.triangles).size == len(mesh.vertices), "no unused vertices"


@pytest.mark.parametrize("spacing", [10.0, 14.0])
def test_mesh_covers_mask(spacing):
    alpha = bird_mask()
    mesh = mesh_from_mask(alpha, spacing)
    check_quality(mesh)
    inside = alpha > 0.5
    cov = (covered(mesh, alpha.shape) & inside).sum() / inside.sum()
    assert cov >= 0.99, cov
    assert 100 <= len(mesh.triangles) <= 600, len(mesh.triangles)


def test_mesh_size_for_a_200px_bird():
    mesh = mesh_from_mask(bird_mask(), 12.0)
    assert 100 <= len(mesh.triangles) <= 400, len(mesh.triangles)


def test_joints_are_first_vertices_even_outside_the_mask():
    alpha = bird_mask()
    joints = np.array([[100.0, 110.0], [165.0, 80.0], [30.0, 110.0], [120.0, 20.0]])  # last: off the bird
    mesh = mesh_from_mask(alpha, 12.0, joints=joints)
    check_quality(mesh)
    np.testing.assert_array_equal(mesh.vertices[: len(joints)], joints)
    used = np.unique(mesh.triangles)
    assert np.isin(np.arange(len(joints)), used).all()


def test_largest_piece_only_and_errors():
    a = np.zeros((100, 100), np.float32)
    cv2.circle(a, (30, 50), 20, 1, -1)
    cv2.circle(a, (85, 50), 6, 1, -1)
    mesh = mesh_from_mask(a, 8.0)
    assert mesh.vertices[:, 0].max() < 60
    with pytest.raises(ValueError):
        mesh_from_mask(np.zeros((20, 20), np.float32), 8.0)


def test_mesh_from_polygon():
    wing = np.array([[0, 0], [120, 10], [140, 40], [60, 45], [10, 30]], np.float64) + 50
    mesh = mesh_from_polygon(wing, 10.0, joints=[[55.0, 55.0]])
    check_quality(mesh)
    np.testing.assert_array_equal(mesh.vertices[0], [55.0, 55.0])
    m = np.zeros((150, 250), np.uint8)
    cv2.fillPoly(m, [wing.astype(np.int32)], 1)
    inside = cv2.erode(m, np.ones((3, 3), np.uint8)).astype(bool)
    assert (covered(mesh, m.shape) & inside).sum() / inside.sum() >= 0.99


def test_concave_shape_covered():
    a = np.zeros((200, 200), np.float32)
    cv2.ellipse(a, (100, 100), (80, 80), 0, 20, 340, 1, 25)  # a thick open ring: deep concavity
    mesh = mesh_from_mask(a, 10.0)
    check_quality(mesh)
    inside = a > 0.5
    assert (covered(mesh, a.shape) & inside).sum() / inside.sum() >= 0.99
    assert a[~covered(mesh, a.shape)].max() < 0.05  # nothing of the shape outside the mesh


@pytest.mark.parametrize("size", [60, 200, 400])
def test_spacing_for_gives_about_n_triangles(size):
    a = bird_mask(size, blur=0.5)
    n = len(mesh_from_mask(a, spacing_for(a, 250)).triangles)
    assert 170 <= n <= 340, n

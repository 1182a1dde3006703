"""The rig engine: cut-out bird, triangle mesh, as-rigid-as-possible deformation, textured rendering."""

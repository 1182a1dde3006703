"""The steps every engine shares: photo in, bird found and cut out, scene, frames out as video."""

"""Animation engines. Each turns a photo and its bird into frames of that bird flying:

- `rig`: cuts the user's bird out, rigs it and beats its wings by as-rigid-as-possible deformation;
- `gan`: projects the bird into the generator's W+ space and style-mixes it with wing-beat poses
  (the original project's method).
"""

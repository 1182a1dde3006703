"""Measurements of what an animation keeps of the user's bird (see fidelity.py)."""

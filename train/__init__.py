"""Training-side code of birdanim (data preparation, training loop, metrics, export).

Not part of the installed package: `birdanim/` never imports from here.
"""

"""Training-side code of birdanim, by kind (run each as `python -m train.<package>.<module>`):

    loop/         the training loop: config and presets, data, augmentation, losses, networks, snapshots
    metrics/      FD / KID / precision / recall / bird-detect of a generator, and their curves
    tools/        what makes the shipped assets: datasets, export, encoder, target poses, examples
    diagnostics/  probes of a trained generator and discriminator

Not part of the installed package: `birdanim/` never imports from here.
"""

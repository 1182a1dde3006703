"""The training loop: config and presets, data, augmentation, losses, networks, snapshots."""

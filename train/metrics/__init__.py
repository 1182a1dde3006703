"""Metrics of a generator (FD / KID / precision / recall / bird-detect) and their curves."""

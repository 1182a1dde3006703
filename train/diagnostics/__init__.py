"""Diagnostics: probes of a trained generator and discriminator (they make nothing that ships)."""

"""Wav2Lip: the lip-sync generator, its audio front-end and checkpoint loading."""

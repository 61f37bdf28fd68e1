"""SadTalker inference networks (audio to 3DMM coefficients to face video), checkpoint-compatible."""

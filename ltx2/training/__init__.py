"""Face profiles: photo intake and LoRA training on the resident LTX-2 transformer."""

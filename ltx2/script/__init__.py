"""Long scripts: split into segments, generated with continuity, stitched into one captioned video."""

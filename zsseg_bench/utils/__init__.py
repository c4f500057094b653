"""Small utilities shared by every layer: errors, atomic file I/O, run directories, environment."""

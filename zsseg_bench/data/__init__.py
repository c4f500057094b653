"""Data layer: catalogs, datasets, zero-shot splits, mapper and loaders."""

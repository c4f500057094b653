"""Tools of the AlignZeg project (PBC calibration on the toy world's held-out split)."""

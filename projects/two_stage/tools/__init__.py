"""Tools of the two-stage project: the toy world's held-out split and the ablation runner."""

"""zsseg-bench: CLIP-based zero-shot semantic segmentation, two-stage vs one-stage, head to head."""

__version__ = "0.1.0"

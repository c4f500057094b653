"""The shared CLIP layer (open_clip ViT): dense features, crop encoding, text embeddings.

Importing this package registers the ``zsseg_bench://`` path handler (files shipped under
``zsseg_bench/model_zoo/``) and the open_clip model configs shipped there (``ToyCLIP-ViT-P8``).
"""

from .build import build_clip
from .loading import build_open_clip, read_checkpoint, register_shipped_model_configs
from .model import CLIPModel, DenseFeatures
from .path_handler import MODEL_ZOO_DIR, PackageFileHandler, register_package_handler
from .templates import IMAGENET_80, SINGLE, VILD_14, get_templates

register_package_handler()
register_shipped_model_configs()

__all__ = [
    "build_clip",
    "build_open_clip",
    "read_checkpoint",
    "register_shipped_model_configs",
    "CLIPModel",
    "DenseFeatures",
    "MODEL_ZOO_DIR",
    "PackageFileHandler",
    "register_package_handler",
    "IMAGENET_80",
    "SINGLE",
    "VILD_14",
    "get_templates",
]

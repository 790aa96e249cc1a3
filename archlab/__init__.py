"""archlab: ablation and architecture studies of the Inception-v3 design choices."""

__version__ = "0.1.0"

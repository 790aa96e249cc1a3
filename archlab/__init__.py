"""archlab: ablation and architecture studies of the Inception-v3 design choices."""

__version__ = "0.1.0"

# importing the blocks registers every option on the design axes
from archlab import blocks as _blocks  # noqa: E402, F401

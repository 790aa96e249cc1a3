"""The architecture layer: design axes and knobs, blocks, models, and their exact costs."""

# importing the blocks registers every option on the design axes
from archlab.arch import blocks as _blocks  # noqa: F401

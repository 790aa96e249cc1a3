"""Building blocks; importing this package registers every option on the design axes."""

from archlab.blocks import aux, factorize, modules, reduce, stem  # noqa: F401  (registration)
from archlab.blocks.conv import ConvBN
from archlab.blocks.modules import BranchConcat, Ctx

__all__ = ["BranchConcat", "ConvBN", "Ctx"]

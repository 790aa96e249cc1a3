"""Building blocks; importing this package registers every option on the design axes."""

from archlab.arch.blocks import aux, factorize, modules, reduce, stem  # noqa: F401  (registration)
from archlab.arch.blocks.conv import ConvBN
from archlab.arch.blocks.modules import BranchConcat, Ctx

__all__ = ["BranchConcat", "ConvBN", "Ctx"]

"""Methods: model + objective(s) + training schedule behind one interface, found by name."""

from mmib.methods.base import Method, NonFiniteLossError
from mmib.methods.registry import (
           METHODS,
           build_method,
           get_method_class,
           load_method,
           method_names,
           register_method,
)

__all__ = ["METHODS", "Method", "NonFiniteLossError", "build_method", "get_method_class", "load_method",
           "method_names", "register_method"]

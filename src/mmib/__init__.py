"""mmib: multimodal representation learning with information-theoretic objectives."""
__version__ = "0.1.0"

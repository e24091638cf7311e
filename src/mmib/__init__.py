"""mmib: multimodal representation learning with information-theoretic objectives."""
__version__ = "0.1.0"


def __getattr__(name):  # lazy: importing mmib stays light
    if name == "MultimodalModel":
        from mmib.api import MultimodalModel

        return MultimodalModel
    raise AttributeError(f"module 'mmib' has no attribute {name!r}")

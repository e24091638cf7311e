"""Data contract, data sets, data modules."""

from mmib.data.dataset import DataValidationError, MultimodalDataset, collate_multimodal, validate_batch
from mmib.data.registry import build_dataset, dataset_names, register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec

__all__ = [
    "DataValidationError",
    "DatasetSpec",
    "ModalitySpec",
    "MultimodalDataset",
    "build_dataset",
    "collate_multimodal",
    "dataset_names",
    "register_dataset",
    "validate_batch",
]

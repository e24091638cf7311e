"""Evaluation protocols: probes, modality subsets, retrieval, information probes, plots, reports."""

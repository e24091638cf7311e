"""``rus``'s building blocks (:mod:`mmib.methods.rus_blocks`): the default epoch start of a modality's time axis
and the GRU temporal model."""

import pytest
import torch

from mmib.data.spec import ModalitySpec
from mmib.errors import MMIBError
from mmib.methods.rus_blocks import GRUPool, default_time_start


def test_default_time_start_follows_the_mne_pipelines_epoch_windows():
    from mmib.data.physio.preprocess import EEGPipeline, FNIRSPipeline

    for name, pipe in (("eeg", EEGPipeline()), ("fnirs", FNIRSPipeline())):
        rate = 128.0 if name == "eeg" else 10.0
        n = int(round((pipe.tmax - pipe.tmin) * rate)) + 1
        assert default_time_start(ModalitySpec(name, "signal", (4, n), rate=rate)) == pytest.approx(pipe.tmin)
    assert default_time_start(ModalitySpec("emg", "signal", (2, 50), rate=100.0)) == 0.0  # other modalities: 0
    with pytest.raises(MMIBError, match="method.time_start.eeg"):  # a window that is not the pipeline's
        default_time_start(ModalitySpec("eeg", "signal", (4, 10), rate=128.0))


def test_gru_pool_returns_the_normalized_last_hidden_state():
    torch.manual_seed(0)
    pool = GRUPool(8)
    x = torch.randn(3, 5, 8)
    _, h = pool.gru(x)
    assert torch.allclose(pool(x), pool.norm(h[-1]))
    assert pool(x).shape == (3, 8)

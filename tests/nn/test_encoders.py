import pytest
import torch

from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError, UnknownNameError
from mmib.nn import build_encoder


@pytest.mark.parametrize(
    "ms, x, cfg",
    [
        (ModalitySpec("v", "vector", (7,)), torch.randn(4, 7), {}),
        (ModalitySpec("s", "signal", (3, 50)), torch.randn(4, 3, 50), {}),
        (ModalitySpec("s", "signal", (1, 17)), torch.randn(4, 1, 17), {}),
        (ModalitySpec("q", "sequence", (12, 5)), torch.randn(4, 12, 5), {}),
        (ModalitySpec("q", "sequence", (12, 5)), torch.randn(4, 12, 5), {"sequence": {"type": "lstm"}}),
        (ModalitySpec("q", "sequence", (12, 5)), torch.randn(4, 12, 5), {"sequence": {"type": "transformer"}}),
        (ModalitySpec("i", "image", (1, 16, 16)), torch.randn(4, 1, 16, 16), {}),
        (ModalitySpec("i", "image", (5, 9, 11)), torch.randn(4, 5, 9, 11), {}),
    ],
)
def test_encoder_output_shape(ms, x, cfg):
    enc = build_encoder(ms, 32, cfg)
    assert enc(x).shape == (4, 32)


@pytest.mark.parametrize("etype", ["gru", "lstm", "transformer"])
def test_sequence_padding_is_ignored(etype):
    ms = ModalitySpec("q", "sequence", (10, 3))
    enc = build_encoder(ms, 8, {"sequence": {"type": etype}}).eval()
    x = torch.randn(2, 10, 3)
    lengths = torch.tensor([6, 10])
    y1 = enc(x, lengths)
    x2 = x.clone()
    x2[0, 6:] = 100.0  # garbage in the padding
    y2 = enc(x2, lengths)
    torch.testing.assert_close(y1, y2)


def test_encoder_errors():
    # user mistakes are MMIBErrors (one line from the CLI, exit code 2), not ValueErrors with a traceback
    ms = ModalitySpec("v", "vector", (7,))
    with pytest.raises(MMIBError, match=r"modality 'v' is a vector; encoder 'cnn1d' expects a signal"):
        build_encoder(ms, 8, {"vector": {"type": "cnn1d"}})
    with pytest.raises(UnknownNameError, match=r"^modality 'v': unknown encoder type 'foo'; valid: cnn1d, filterbank, "
                                              r"gru, lstm, mlp, resnet, transformer$") as info:
        build_encoder(ms, 8, {"modalities": {"v": {"type": "foo"}}})
    assert info.value.name == "foo" and "mlp" in info.value.valid
    with pytest.raises(UnknownNameError, match=r"unknown encoder type 'nope'"):
        build_encoder(ms, 8, {"vector": {"type": "nope"}})
    with pytest.raises(UnknownNameError, match=r"unknown encoder type '\['mlp'\]'"):
        build_encoder(ms, 8, {"vector": {"type": ["mlp"]}})
    with pytest.raises(MMIBError, match=r"bad settings for encoder 'mlp'"):
        build_encoder(ms, 8, {"vector": {"depth": 3}})
    with pytest.raises(MMIBError, match=r"modality 'v': bad settings for encoder 'mlp': unknown activation 'nope'"):
        build_encoder(ms, 8, {"vector": {"act": "nope"}})


def _two_vectors() -> DatasetSpec:
    return DatasetSpec("two", (ModalitySpec("fou", "vector", (7,)), ModalitySpec("kar", "vector", (5,))))


def test_method_rejects_unknown_modality_in_encoder_config():
    from mmib.methods.registry import build_method

    cfg = {"representation_dim": 8, "embed_dim": 4}
    with pytest.raises(UnknownNameError, match=r"^unknown modality under encoder.modalities for data set 'two' 'fuo'; "
                                              r"did you mean 'fou'\? valid: fou, kar$"):
        build_method("clip", _two_vectors(), cfg, {"modalities": {"fuo": {"hidden": [8]}}})
    with pytest.raises(MMIBError, match=r"encoder.modalities: expected a mapping"):
        build_method("clip", _two_vectors(), cfg, {"modalities": ["fou"]})
    # a known modality's override is applied to that modality only
    m = build_method("clip", _two_vectors(), cfg, {"vector": {"hidden": [16]}, "modalities": {"fou": {"hidden": [8]}}})
    widths = {k: [p.shape[0] for n, p in enc.named_parameters() if n.endswith("weight") and p.ndim == 2]
              for k, enc in m.encoders.items()}
    assert widths["fou"][0] == 8 and widths["kar"][0] == 16


def test_switching_the_encoder_type_drops_the_other_types_defaults_only():
    from mmib.config import compose_config, to_container
    from mmib.nn.encoders import TransformerSeqEncoder

    enc = to_container(compose_config(["encoder.sequence.type=transformer", "+encoder.sequence.d_model=16"]))["encoder"]
    ms = ModalitySpec("t", "sequence", (None, 5))
    e = build_encoder(ms, 8, enc)  # the GRU defaults (hidden, num_layers) do not reach the Transformer
    assert isinstance(e, TransformerSeqEncoder)
    assert e(torch.randn(3, 7, 5)).shape == (3, 8)
    with pytest.raises(MMIBError, match="unexpected keyword argument 'hiddn'"):
        build_encoder(ms, 8, {"sequence": {"type": "transformer", "hiddn": 4}})

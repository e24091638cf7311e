"""mmib.utils.modelfile: MultimodalModel.save's file (safetensors + digest) round-trips exactly, non-finite floats
in the info included; an edited, foreign or damaged file fails with one line naming it; older torch-pickle files load
safely with a warning."""

import json

import pytest
import torch

from mmib.errors import MMIBError
from mmib.utils.modelfile import FORMAT_VERSION, read_model_file, write_model_file


def _parts():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 4, generator=g)
    state = {"enc.weight": w, "head.weight": w, "enc.bias": torch.zeros(3), "step": torch.tensor(7)}  # tied weight
    norm = {"eeg": (torch.randn(4, generator=g), torch.rand(4, generator=g) + 0.5), "fnirs": ([0.0, 1.0], [1.0, 2.0])}
    info = {"method_name": "clip", "overrides": {"method.embed_dim": 8}, "spec": {"name": "toy"},
            "hyper_parameters": {"tau": float("inf"), "floor": float("-inf"), "lam": [float("nan"), 1.5]}}
    return info, state, norm


def test_round_trip_is_exact(tmp_path):
    info, state, norm = _parts()
    path = tmp_path / "m.safetensors"
    write_model_file(path, info, state, norm)
    info2, state2, norm2 = read_model_file(path)
    hp = info2["hyper_parameters"]
    assert hp["tau"] == float("inf") and hp["floor"] == float("-inf") and hp["lam"][1] == 1.5
    assert hp["lam"][0] != hp["lam"][0]  # nan
    assert {k: v for k, v in info2.items() if k != "hyper_parameters"} == \
        {k: v for k, v in info.items() if k != "hyper_parameters"}
    assert set(state2) == set(state)
    for k in state:
        assert torch.equal(state2[k], state[k]) and state2[k].dtype == state[k].dtype
    assert set(norm2) == {"eeg", "fnirs"}
    for m, (mean, std) in norm.items():
        torch.testing.assert_close(norm2[m][0], torch.as_tensor(mean), rtol=0, atol=0)
        torch.testing.assert_close(norm2[m][1], torch.as_tensor(std), rtol=0, atol=0)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["mmib_model"] == FORMAT_VERSION and json.loads(meta["info"])["hyper_parameters"]["tau"] == \
        {"__float__": "inf"}


def test_a_flipped_byte_or_an_edited_header_is_named(tmp_path):
    info, state, norm = _parts()
    path = tmp_path / "m.safetensors"
    write_model_file(path, info, state, norm)
    data = bytearray(path.read_bytes())
    flipped = tmp_path / "flipped.safetensors"
    data[-3] ^= 0x01  # inside the last tensor's bytes
    flipped.write_bytes(bytes(data))
    with pytest.raises(MMIBError, match=r"^'.*flipped.safetensors': the model file's content does not match its "
                                        r"digest"):
        read_model_file(flipped)
    edited = tmp_path / "edited.safetensors"
    edited.write_bytes(path.read_bytes().replace(b"clip", b"clap", 1))  # same length: the header still parses
    with pytest.raises(MMIBError, match="does not match its digest"):
        read_model_file(edited)


def test_foreign_and_damaged_files(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "pt"})
    with pytest.raises(MMIBError, match=r"a safetensors file, but not an mmib model \(format None, expected '1'"):
        read_model_file(other)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(MMIBError, match=r"^'.*junk.bin': not an mmib model file \(neither safetensors nor a torch "
                                        r"file"):
        read_model_file(junk)
    with pytest.raises(MMIBError, match="is a folder, expected a model file"):
        read_model_file(tmp_path)
    with pytest.raises(MMIBError, match=r"'.*nope.safetensors': cannot read the model file"):
        read_model_file(tmp_path / "nope.safetensors")
    # a normalization entry without its std
    info, state, _ = _parts()
    lame = tmp_path / "lame.safetensors"
    write_model_file(lame, info, state, {})
    from safetensors.torch import load_file

    from mmib.utils.modelfile import _digest

    tensors = {**load_file(str(lame)), "normalization/eeg/mean": torch.zeros(4)}
    meta = {"mmib_model": FORMAT_VERSION, "info": json.dumps(info, sort_keys=True, default=str)}
    meta["digest"] = _digest(meta["info"], tensors)
    save_file(tensors, str(lame), metadata=meta)
    with pytest.raises(MMIBError, match="normalization of modality 'eeg' lacks its mean or std"):
        read_model_file(lame)


def test_an_older_torch_pickle_model_loads_with_a_warning(tmp_path):
    info, state, norm = _parts()
    old = tmp_path / "old.pt"
    torch.save({"overrides": info["overrides"], "method_name": "clip", "hyper_parameters": {"lr": 0.1},
                "state_dict": state, "spec": info["spec"], "normalization": {"eeg": norm["eeg"]}}, old)
    with pytest.warns(UserWarning, match="saved by an older mmib"):
        info2, state2, norm2 = read_model_file(old)
    assert info2["method_name"] == "clip" and info2["hyper_parameters"] == {"lr": 0.1}
    assert torch.equal(state2["enc.weight"], state["enc.weight"]) and torch.equal(norm2["eeg"][1], norm["eeg"][1])
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(MMIBError, match=r"not an mmib model file \(it holds keys \['something'\]\)"):
        read_model_file(tmp_path / "other.pt")

"""The bimodal Trifeature generator (spec B.8): determinism, latents determine the pixels, the shared / unique /
synergistic structure, the biased pretraining pairs, option validation, a linear read-out of the colour, and one
CoMM / CLIP loss step with the image encoder."""

import numpy as np
import pytest
import torch

from mmib.data.registry import build_dataset
from mmib.data.synthetic.trifeature import COLOURS, SHAPES, TEXTURES, make_trifeature
from mmib.errors import MMIBError
from mmib.methods.registry import build_method

SMALL = {"n_samples": 64, "image_size": 16, "supersample": 1}


def test_registry_spec_and_determinism_per_seed():
    ds = build_dataset("trifeature", n_samples=40, image_size=24)
    assert ds.spec.modality_names == ("x1", "x2")
    assert all(m.kind == "image" and m.shape == (3, 24, 24) for m in ds.spec.modalities)
    assert ds.spec.latents == {"shape": 10, "texture_1": 10, "colour_1": 10, "texture_2": 10, "colour_2": 10,
                               "synergy": 2}
    assert ds.spec.n_classes == 10 and np.array_equal(ds.y.numpy(), ds.latents["shape"].numpy())
    x = ds.x["x1"].numpy()
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    again = make_trifeature(n_samples=40, image_size=24)
    other = make_trifeature(n_samples=40, image_size=24, seed=1)
    for m in ("x1", "x2"):
        assert np.array_equal(ds.x[m].numpy(), again.x[m].numpy())
        assert not np.array_equal(ds.x[m].numpy(), other.x[m].numpy())
    assert ds.synergy_mapping == again.synergy_mapping


def test_latents_determine_the_pixels():
    ds = make_trifeature(**SMALL)
    lat = {k: v.numpy() for k, v in ds.latents.items()}
    for i in (1, 2):
        again = ds.renderer.render(lat["shape"], lat[f"texture_{i}"], lat[f"colour_{i}"], lat[f"pose_{i}"])
        np.testing.assert_allclose(again, ds.x[f"x{i}"].numpy(), atol=1e-5)
    # without pose nuisance two images with the same (shape, texture, colour) differ only by the texture's phase:
    # the same silhouette (pure background pixels) and, once the phase is set equal, the same pixels
    fixed = dict(max_rotation=0, max_shift=0, max_texture_rotation=0, n_samples=400, image_size=16,
                 shapes=3, textures=3, colours=3)
    a = make_trifeature(**fixed)
    key = a.latents["shape"].numpy() * 9 + a.latents["texture_1"].numpy() * 3 + a.latents["colour_1"].numpy()
    i, j = np.flatnonzero(key == key[0])[:2]
    xi, xj = a.x["x1"].numpy()[i], a.x["x1"].numpy()[j]
    assert np.array_equal(np.all(xi == 0.5, 0), np.all(xj == 0.5, 0)) and np.all(xi == 0.5, 0).any()
    pose = a.latents["pose_1"].numpy()[[j]]
    pose[:, 4:] = a.latents["pose_1"].numpy()[i, 4:]
    np.testing.assert_allclose(a.renderer.render([key[j] // 9], [(key[j] // 3) % 3], [key[j] % 3], pose)[0], xi,
                               atol=1e-6)
    noisy = make_trifeature(**{**fixed, "noise": 0.05})
    clean = noisy.renderer.render(noisy.latents["shape"], noisy.latents["texture_1"], noisy.latents["colour_1"],
                                  noisy.latents["pose_1"])
    diff = noisy.x["x1"].numpy() - clean
    assert 0.02 < diff.std() < 0.06 and np.abs(diff).max() < 0.05 * 6


def test_experiment_1_shares_the_shape_and_keeps_textures_unique():
    ds = make_trifeature(n_samples=2000, image_size=16, supersample=1)
    lat = {k: v.numpy() for k, v in ds.latents.items()}
    # one shape latent drives both images: re-rendering image 2 with image 1's shape reproduces it
    again = ds.renderer.render(lat["shape"], lat["texture_2"], lat["colour_2"], lat["pose_2"])
    np.testing.assert_allclose(again, ds.x["x2"].numpy(), atol=1e-5)
    # textures and colours are independent across the two images (CoMM: only the shape is shared)
    agree = {k: float(np.mean(lat[f"{k}_1"] == lat[f"{k}_2"])) for k in ("texture", "colour")}
    assert all(abs(v - 0.1) < 0.03 for v in agree.values()), agree
    info = ds.information["targets"]
    assert info["shape"]["PID"] == pytest.approx({"R": np.log2(10), "U1": 0, "U2": 0, "S": 0}, abs=1e-9)
    assert info["texture_1"]["PID"] == pytest.approx({"R": 0, "U1": np.log2(10), "U2": 0, "S": 0}, abs=1e-9)
    assert info["texture_2"]["PID"] == pytest.approx({"R": 0, "U1": 0, "U2": np.log2(10), "S": 0}, abs=1e-9)


def test_experiment_2_synergy_is_a_function_of_texture_1_and_colour_2_and_constant_when_biased():
    ds = make_trifeature(n_samples=3000, image_size=16, supersample=1, task="synergy")
    lat = {k: v.numpy() for k, v in ds.latents.items()}
    mapping = np.array([list(COLOURS).index(ds.synergy_mapping[t]) for t in TEXTURES])
    assert sorted(mapping) == list(range(10))  # a bijection of the 10 textures and 10 colours
    assert np.array_equal(lat["synergy"], (lat["colour_2"] == mapping[lat["texture_1"]]).astype(int))
    assert np.array_equal(ds.y.numpy(), lat["synergy"]) and ds.spec.n_classes == 2
    assert abs(lat["synergy"].mean() - 0.1) < 0.03
    info = ds.information["targets"]["synergy"]
    assert info["I"]["1"] == pytest.approx(0, abs=1e-9) and info["I"]["2"] == pytest.approx(0, abs=1e-9)
    assert info["PID"]["S"] == pytest.approx(info["H"]) and info["H"] > 0.4

    biased = make_trifeature(n_samples=500, image_size=16, supersample=1, task="synergy", biased=True)
    blat = {k: v.numpy() for k, v in biased.latents.items()}
    assert biased.synergy_mapping == ds.synergy_mapping  # same world for the same seed
    assert np.all(blat["synergy"] == 1)
    assert np.array_equal(blat["colour_2"], mapping[blat["texture_1"]])
    assert biased.information["targets"]["synergy"]["H"] == pytest.approx(0, abs=1e-9)
    # the rest of the pair stays free: texture_2 and colour_1 still take many values
    assert len(np.unique(blat["texture_2"])) == 10 and len(np.unique(blat["colour_1"])) == 10
    half = make_trifeature(n_samples=2000, image_size=16, supersample=1, task="synergy", biased=True, bias_q=0.5)
    assert 0.5 < half.latents["synergy"].float().mean() < 0.6  # q + (1 - q) / 10


def test_counts_and_names_are_options():
    ds = make_trifeature(n_samples=200, image_size=16, supersample=1, shapes=["circle", "star", "tee"],
                         textures=4, colours=5, task="texture_2")
    assert ds.spec.latents["shape"] == 3 and ds.spec.latents["texture_2"] == 4 and ds.spec.n_classes == 4
    assert ds.renderer.shapes == ("circle", "star", "tee") and ds.renderer.textures == TEXTURES[:4]
    assert ds.latents["colour_1"].max() <= 4 and set(ds.synergy_mapping) == set(TEXTURES[:4])
    assert make_trifeature(n_samples=10, image_size=16, task="unique_1").spec.n_classes == 10


@pytest.mark.parametrize("options, option", [
    ({"image_size": 8}, "image_size"),
    ({"n_samples": 1}, "n_samples"),
    ({"shapes": 11}, "shapes"),
    ({"shapes": ["circle", "hexagon"]}, "shapes"),
    ({"textures": 1}, "textures"),
    ({"colours": ["red", "red"]}, "colours"),
    ({"textures": 6, "colours": 5}, "colours"),
    ({"task": "colour"}, "task"),
    ({"bias_q": 1.5}, "bias_q"),
    ({"max_rotation": -1}, "max_rotation"),
    ({"max_shift": 2}, "max_shift"),
    ({"shape_scale": 0.1}, "shape_scale"),
    ({"texture_period": 1}, "texture_period"),
    ({"texture_contrast": 0}, "texture_contrast"),
    ({"supersample": 0}, "supersample"),
    ({"noise": -0.1}, "noise"),
    ({"biased": "yes"}, "biased"),
])
def test_bad_options_name_the_option(options, option):
    with pytest.raises(ValueError, match=rf"trifeature: .*{option}"):
        make_trifeature(**{"n_samples": 8, "image_size": 16, **options})


def test_unknown_option_via_registry():
    with pytest.raises(MMIBError, match="option"):
        build_dataset("trifeature", n_shapes=3)


def test_linear_probe_on_raw_pixels_reads_the_colour():
    from sklearn.linear_model import LogisticRegression

    ds = make_trifeature(n_samples=400, image_size=16, supersample=1, task="colour_1")
    x = ds.x["x1"].numpy().reshape(400, -1)
    y = ds.latents["colour_1"].numpy()
    clf = LogisticRegression(max_iter=300, C=1.0).fit(x[:300], y[:300])
    assert clf.score(x[300:], y[300:]) > 0.8
    assert len(SHAPES) == 10 and len(TEXTURES) == 10


ENC = {"image": {"type": "resnet", "widths": [8, 8]}}


@pytest.mark.parametrize("name, cfg", [
    ("comm", {"embed_dim": 16, "fusion": {"n_heads": 2, "dim_feedforward": 32}, "head_hidden": 32,
              "projection_dim": 16, "augment_seed": 0}),
    ("clip", {"representation_dim": 16, "embed_dim": 16}),
])
def test_one_loss_step_with_the_image_encoder(name, cfg):
    torch.manual_seed(0)
    ds = make_trifeature(n_samples=8, image_size=16, supersample=1, task="synergy")
    method = build_method(name, ds.spec, cfg, ENC)
    batch = ds.get_batch(np.arange(8))
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in method.parameters()]
    out = method.loss(batch)
    assert torch.isfinite(out.loss)
    opt.zero_grad()
    out.loss.backward()
    opt.step()
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, method.parameters()))

"""Paper recipes (conf/experiment/*.yaml): every recipe composes, names registered methods and data sets, carries a
valid ``paper`` block, and trains for one epoch on a tiny file in the data set's native format; the evaluation
report shows the "paper vs ours" table.

The native-format files come from the fixture writers of the loader tests (tests/data/loaders/test_*.py).
"""

import importlib.util
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from mmib.cli import main
from mmib.config import CONF_DIR, compose_config, group_options, split_data_config
from mmib.data.registry import get_dataset_entry
from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.report import check_paper_block, paper_comparison, paper_table, render_markdown
from mmib.methods.registry import get_method_class

RECIPES = group_options("experiment")
LOADER_TESTS = Path(__file__).parent / "data" / "loaders"


def _loader_test_module(name: str):
    """A loader test module (for its native-format fixture writers), imported from its file."""
    spec = importlib.util.spec_from_file_location(f"_recipe_fixtures_{name}", LOADER_TESTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------------------------------ native-format files
def _affect_file(tmp: Path, name: str, cfg) -> Path:
    m = _loader_test_module("test_affect")
    rng = np.random.default_rng(0)

    def split(n):  # every one of the 7 sentiment classes (and both binary classes) in every split
        return m._split(rng, n, rng.integers(0, 3, n), np.arange(n) % 7 - 3.0)

    files = {"mosi": "mosi_data.pkl", "mosei": "mosei_senti_data.pkl", "urfunny": "humor.pkl",
             "mustard": "sarcasm.pkl"}
    fname = "mosei_raw.pkl" if name == "mosei" and cfg.data.get("variant") == "raw" else files[name]
    return m._write(tmp / fname, {"train": split(24), "valid": split(8), "test": split(8)})


def _vision_touch_folder(tmp: Path, cfg) -> Path:
    m = _loader_test_module("test_vision_touch")
    d = tmp / "vision_touch"
    d.mkdir()
    for e in range(8):  # 8 episodes x 4 samples; contact labels vary with the episode
        m._episode(d / f"triangle_{e:02d}_1000.h5", e, chw=(e == 1))
    return d


def _mujoco_push_folder(tmp: Path, cfg) -> Path:
    m = _loader_test_module("test_mujoco_push")
    rng = np.random.default_rng(0)
    d = tmp / "mujoco_push"
    d.mkdir()
    for s, n, off in (("train", 3, 0.0), ("val", 1, 10.0), ("test", 2, 20.0)):
        m._write(d / m.PUSH_FILES[s], [m._traj(rng, 12 + i, off) for i in range(n)])
    return d


def _wesad_folder(tmp: Path, cfg) -> Path:
    m = _loader_test_module("test_wesad")
    r = tmp / "WESAD"
    for num in (2, 3, 4, 5, 6, 7):
        m._write(r, num, m._subject(num))
    return r


def _mimic_file(tmp: Path, cfg) -> Path:
    m = _loader_test_module("test_mimic")
    p = tmp / "im.pk"
    with open(p, "wb") as f:
        pickle.dump(m._data(np.random.default_rng(0)), f)
    return p


def _generic_file(tmp: Path, cfg) -> Path:
    """The generic-format file a recipe describes (modality names and layout from its comment block)."""
    rng = np.random.default_rng(0)
    n = 48
    split = np.array(["train"] * 32 + ["val"] * 8 + ["test"] * 8)
    name = cfg.data.dataset_name
    meta = {"name": name}
    if name == "crema_d":
        a = {"audio": rng.normal(size=(n, 1, 8, 8)), "visual": rng.normal(size=(n, 3, 8, 8)), "y": np.arange(n) % 6}
    elif name == "tissue_10x":
        y = np.where(split == "train", 0, np.arange(n) % 2)
        a = {"genes": rng.normal(size=(n, 20)), "histology": rng.normal(size=(n, 3, 8, 8)), "y": y}
    elif name in ("meld", "meld_sentiment", "iemocap"):
        k = {"meld": 7, "meld_sentiment": 2, "iemocap": 5}[name]
        a = {"audio": rng.normal(size=(n, 6, 4)), "visual": rng.normal(size=(n, 6, 5)), "text": rng.normal(size=(n, 6, 3)),
             "y": np.arange(n) % k}
        meta["modalities"] = {m: {"kind": "sequence"} for m in ("audio", "visual", "text")}
    else:  # COX: IM features rgb, lan; the OOM modality last; presence masks express the missing correspondence
        oom = cfg.method.oom_modality
        k = 2 if name == "llvip_thermal" else 4
        y = np.arange(n) % k
        role = np.array((["im", "oom"] * 16) + ["pair"] * 16)
        if cfg.method.scenario == "semi":
            role[[1, 3, 5, 7]] = "pair"  # a few labelled true pairs among the OOM training samples
        a = {"rgb": rng.normal(size=(n, 6)) + y[:, None], "lan": rng.normal(size=(n, 6)) + y[:, None],
             oom: rng.normal(size=(n, 1, 8, 8)) + y[:, None, None, None], "y": y,
             "mask_rgb": role != "oom", "mask_lan": role != "oom", f"mask_{oom}": role != "im"}
    a = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in a.items()}
    p = tmp / f"{name}.npz"
    np.savez(p, meta=json.dumps(meta), split=split, **a)
    return p


WRITERS = {"vision_touch": _vision_touch_folder, "mujoco_push": _mujoco_push_folder, "wesad": _wesad_folder,
           "mimic": _mimic_file, "generic": _generic_file,
           **{k: (lambda tmp, cfg, k=k: _affect_file(tmp, k, cfg)) for k in ("mosi", "mosei", "urfunny", "mustard")}}
#: per data set: loader options that make the tiny files usable (history / windows fitting the fixture sizes)
DATA_OVERRIDES = {"mujoco_push": ["data.history=4", "data.stride=2"], "wesad": ["data.step_s=1.0"],
                  "vision_touch": ["data.val_fraction=0.125", "data.test_fraction=0.125"]}

#: shrink every size a recipe sets (where the composed config has the key) so one epoch takes a moment
SHRINK = {
    "encoder.image.widths": [4], "encoder.image.blocks_per_stage": 1, "encoder.signal.channels": [4],
    "encoder.sequence.hidden": 8, "encoder.sequence.d_model": 8, "encoder.sequence.n_heads": 2,
    "encoder.sequence.n_layers": 1, "encoder.vector.hidden": [8],
    "method.representation_dim": 8, "method.embed_dim": 8, "method.head_dim": 8, "method.head_hidden": 8,
    "method.critic_hidden": [8], "method.projection_dim": 8, "method.vae_hidden": 8, "method.svdd_dim": 8,
    "method.club_hidden": 8, "method.fusion.ffn": 16, "method.fusion.heads": 2, "method.fusion.n_heads": 2,
    "method.can_heads": 2, "method.vector_tokens": 4, "method.mine.steps": 5, "method.mine.batch_size": 16,
    "method.mine.hidden_dim": 8, "method.connection.hidden": 8, "method.connection.latent_dim": 4,
    "method.head_fit.steps": 2, "method.centroid_steps": 2, "method.mmd_steps": 2,
    "method.unique_augment.max_rank": 4,
}
_MISSING = object()


def _shrink_overrides(cfg) -> list[str]:
    out = []
    for key, small in SHRINK.items():
        cur = OmegaConf.select(cfg, key, default=_MISSING)
        if cur is _MISSING or cur is None:
            continue
        if OmegaConf.is_list(cur):
            if len(cur) == 0:
                continue  # an empty list (e.g. linear heads) stays empty
            small = small if isinstance(small, list) else [small]
        elif isinstance(small, list):
            small = small[0]
        out.append(f"{key}={json.dumps(small)}")
    for mod, settings in (cfg.encoder.get("modalities") or {}).items():  # per-modality encoders
        for key, small in (("d_model", 8), ("n_heads", 2), ("n_layers", 1), ("hidden", 8)):
            if key in settings:
                out.append(f"encoder.modalities.{mod}.{key}={small}")
    if cfg.method.name in ("omib", "omib_svdd"):
        # OMIB needs max_epochs > warmup_epochs: one warm-up epoch, then one main epoch (MINE bounds, OMF)
        # and a fixed beta: MINE bounds on a few dozen random rows are noise (OMIB refuses inconsistent estimates)
        out += ["method.warmup_epochs=1", "trainer.max_epochs=2", "method.beta=0.001"]
    return out


def _recipe_file(name: str) -> dict:
    return yaml.safe_load((CONF_DIR / "experiment" / f"{name}.yaml").read_text())


# ------------------------------------------------------------------------------------------------- composition
def test_recipes_exist():
    assert len(RECIPES) >= 30
    picks = [{k.split("/")[-1]: v for e in _recipe_file(n)["defaults"] if isinstance(e, dict) for k, v in e.items()}
             | dict((_recipe_file(n).get("method") or {}).items()) for n in RECIPES]
    methods = {p["name"] if "name" in p else p["method"] for p in picks}
    assert {"ova_ib", "omib", "omib_svdd", "ibma", "factorcl_sup", "factorcl_ssl", "comm", "cox"} <= methods


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_composes_with_registered_names_and_a_valid_paper_block(name):
    raw = _recipe_file(name)
    assert (CONF_DIR / "experiment" / f"{name}.yaml").read_text().startswith("# @package _global_")
    overrides = {next(iter(e)) for e in raw["defaults"] if isinstance(e, dict)}
    assert {"override /method", "override /data"} <= overrides, f"{name}: defaults must pick a method and data"
    cfg = compose_config([f"experiment={name}"])
    assert get_method_class(cfg.method.name) is not None
    ds_name, options, _ = split_data_config(cfg.data)
    entry = get_dataset_entry(ds_name)
    unknown = set(options) - set(entry.options)
    assert not unknown, f"experiment/{name}.yaml sets data options the loader does not take: {unknown}"
    p = check_paper_block(OmegaConf.to_container(cfg.paper))
    assert p["source"] and p["reported"] and p["metrics"]
    # the recipe's own method is among the paper's rows (except experiments reported only per variant)
    assert any(k.startswith(cfg.method.name.split("_svdd")[0].split("_urfunny")[0]) for k in p["reported"]) or \
        name == "comm_urfunny_3mod", f"{name}: the paper block has no row for {cfg.method.name}"


def _keys_not_in(d: dict, base: dict, path: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        if k not in base and k != "momentum":  # momentum: an SGD argument passed through method.optim
            out.append(f"{path}{k}")
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            out += _keys_not_in(v, base[k], f"{path}{k}.")
    return out


@pytest.mark.parametrize("name", RECIPES)
def test_method_keys_set_by_a_recipe_exist_in_the_method_config(name):
    """A recipe only sets keys its method config already has (a misspelt key would be silently ignored)."""
    raw = _recipe_file(name)
    method = next(v for e in raw["defaults"] if isinstance(e, dict) for k, v in e.items() if k.endswith("method"))
    base = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "method" / f"{method}.yaml"))
    unknown = _keys_not_in(raw.get("method") or {}, base)
    assert not unknown, f"experiment/{name}.yaml sets method keys not in conf/method/{method}.yaml: {unknown}"


def test_unknown_experiment_lists_valid():
    with pytest.raises(UnknownNameError, match=r"^unknown experiment 'nope'; valid: .*ova_ib_vfp_contact"):
        compose_config(["experiment=nope"])


def test_overrides_win_over_the_recipe():
    cfg = compose_config(["experiment=ova_ib_mosei", "seed=3", "method.optim.lr=0.5"])
    assert cfg.seed == 3 and cfg.method.optim.lr == 0.5 and cfg.method.objective.temperature == 0.01
    assert compose_config(["experiment=ova_ib_mosei"]).seed == 42
    assert "paper" not in compose_config([])


def test_experiments_command_lists_every_recipe(capsys):
    assert main(["experiments"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(RECIPES)
    assert any(line.split()[:3] == ["ova_ib_vfp_contact", "ova_ib", "vision_touch"] for line in lines)
    assert any(line.split()[:3] == ["omib_tissue_10x", "omib_svdd", "generic"] for line in lines)


def test_every_recipe_is_in_the_guide_table():
    guide = (Path(__file__).parents[1] / "docs" / "guide" / "recipes.md").read_text()
    missing = [n for n in RECIPES if f"| `{n}` |" not in guide]
    assert not missing, f"docs/guide/recipes.md lists no row for {missing}"


@pytest.mark.parametrize("name, task, modalities, n_classes, target_dim", [
    ("comm_vt_contact", "classification", ("image", "proprio"), 2, None),
    ("comm_vt_contact_3mod", "classification", ("image", "proprio", "force"), 2, None),
    ("comm_vt_ee", "regression", ("image", "force"), None, 4),
])
def test_comm_vision_touch_recipes_build_the_papers_tasks(tmp_path, name, task, modalities, n_classes, target_dim):
    """CoMM Table 1 / Table 3 on Vision & Touch: contact (2 or 3 modalities) and the end-effector target
    (MultiBench ee_yaw_next = next-step proprio[:4], the loader's `orientation` task)."""
    from mmib.data.registry import build_dataset

    cfg = compose_config([f"experiment={name}"])
    ds_name, options, _ = split_data_config(cfg.data)
    options["path"] = str(_vision_touch_folder(tmp_path, cfg))
    ds = build_dataset(ds_name, **options)
    assert set(ds.spec.modality_names) == set(modalities) and ds.spec.task == task
    assert ds.spec.n_classes == n_classes
    if target_dim is not None:
        assert ds.spec.target_dim == target_dim and tuple(ds.y.shape[1:]) == (target_dim,)
    assert cfg.method.optim.lr == 1.0e-4 and cfg.method.optim.weight_decay == 1.0e-2 and cfg.trainer.max_epochs == 100
    p = check_paper_block(OmegaConf.to_container(cfg.paper))
    assert p["row"] == "method/concat/linear"
    if task == "regression":  # the paper prints MSE x 1e-4
        assert p["metrics"] == ["mse"] and p["reported"]["comm"] == {"mse": 4.55}
        assert p["scale"] == {"mse": 10000.0}
    else:
        assert p["reported"]["comm_2mod"] == {"accuracy": 88.1} and p["reported"]["comm_3mod"] == {"accuracy": 94.2}


# ------------------------------------------------------------------------------------------------- smoke runs
def _smoke_overrides(name: str, tmp_path: Path) -> list[str]:
    cfg = compose_config([f"experiment={name}"])
    path = WRITERS[cfg.data.name](tmp_path, cfg)
    return [f"experiment={name}", f"data.path={path}", "data.batch_size=8", "data.num_workers=0",
            *DATA_OVERRIDES.get(cfg.data.name, []), "trainer.max_epochs=1", *_shrink_overrides(cfg),
            "trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "trainer.log_every_n_steps=1",
            f"run_dir={tmp_path / 'runs'}", "name=smoke"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_trains_one_epoch_on_a_native_file(name, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MMIB_DATA", raising=False)
    rc = main(["train", *_smoke_overrides(name, tmp_path)])
    assert rc == 0, capsys.readouterr().err
    run = tmp_path / "runs" / "smoke"
    written = OmegaConf.load(run / "config.yaml")
    assert written.paper.source == compose_config([f"experiment={name}"]).paper.source
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_recipe_run_evaluates_to_a_paper_vs_ours_report(tmp_path, monkeypatch):
    from mmib.eval.evaluate import evaluate_run

    monkeypatch.delenv("MMIB_DATA", raising=False)
    assert main(["train", *_smoke_overrides("ova_ib_wesad_affect", tmp_path)]) == 0
    run = tmp_path / "runs" / "smoke"
    res = evaluate_run(run, [{"protocol": "probe", "probes": ["mlp"], "probe_options": {"max_epochs": 5}}],
                       progress=False)
    cmp = res["paper_vs_ours"]
    assert cmp["ours"]["row"] == "method/concat/mlp" and cmp["ours"]["method"] == "ova_ib"
    acc = next(r for r in res["protocols"]["probe"]["rows"] if r["id"] == "method/concat/mlp")["metrics"]["accuracy"]
    assert cmp["ours"]["values"]["accuracy"] == pytest.approx(100 * acc)
    md = (run / "report.md").read_text()
    assert "## Paper vs ours" in md and "| paper: ova_ib | 76.18 |" in md
    assert f"| ours (ova_ib) | {100 * acc:.2f} |" in md


@pytest.mark.parametrize("name", ["ova_ib_vfd_trajectory"])
def test_trajectory_recipe_evaluates_with_the_pair_probe(name, tmp_path, monkeypatch):
    """The trajectory-pair recipes read "ours" from the pair_probe protocol (a group split with 2 of the 8 episodes in
    val and 2 in test, so that different-trajectory pairs exist in every split)."""
    from mmib.eval.evaluate import evaluate_run

    monkeypatch.delenv("MMIB_DATA", raising=False)
    overrides = [o for o in _smoke_overrides(name, tmp_path) if "_fraction=" not in o]
    assert main(["train", *overrides, "data.split_by=group", "data.val_fraction=0.25", "data.test_fraction=0.25"]) == 0
    run = tmp_path / "runs" / "smoke"
    res = evaluate_run(run, [{"protocol": "pair_probe", "probe_options": {"max_epochs": 5}}], progress=False)
    row = next(r for r in res["protocols"]["pair_probe"]["rows"] if r["id"] == "method/concat/mlp")
    assert row["chance"]["accuracy"] == pytest.approx(0.5, abs=0.1)
    cmp = res["paper_vs_ours"]
    assert cmp["ours"]["row"] == "method/concat/mlp"
    assert cmp["ours"]["values"]["accuracy"] == pytest.approx(100 * row["metrics"]["accuracy"])
    md = (run / "report.md").read_text()
    assert "| paper: ova_ib | 95.08 |" in md and f"| ours (ova_ib) | {100 * row['metrics']['accuracy']:.2f} |" in md


# ------------------------------------------------------------------------------------------------- the table
def _results(paper, rows=None, protocol="probe"):
    return {"method": {"name": "ova_ib", "capabilities": {}}, "data": {"name": "wesad", "modalities": [],
                                                                       "task": "classification"},
            "config": {"paper": paper} if paper is not None else {},
            "protocols": {protocol: {"protocol": protocol, "name": protocol, "rows": rows or []}}}


def test_paper_table_rows_and_scaling():
    paper = {"source": "OVA-IB, Table 1", "metric": "accuracy", "scale": 100, "row": "method/concat/mlp",
             "reported": {"ova_ib": 76.18, "symile": 73.42}, "notes": "beta 0.5"}
    rows = [{"id": "method/concat/linear", "source": "method", "metrics": {"accuracy": 0.5}},
            {"id": "method/concat/mlp", "source": "method", "metrics": {"accuracy": 0.71234}}]
    t = paper_table(_results(paper, rows))
    assert t.headers == ["method", "accuracy (×100)"]
    assert t.rows == [["paper: ova_ib", "76.18"], ["paper: symile", "73.42"], ["ours (ova_ib)", "71.23"]]
    assert "method/concat/mlp" in t.notes[0] and t.notes[1] == "beta 0.5"
    md = render_markdown({**_results(paper, rows), "protocols": {}})
    assert "## Paper vs ours" in md and "| ours (ova_ib) | — |" in md  # no probe results: no value of ours


def test_paper_table_several_metrics_and_missing_values():
    paper = {"source": "OMIB, Table 4", "metric": ["mae", "acc2"], "row": "method/predict/own",
             "reported": {"omib": {"mae": 0.709, "acc2": 86.9}, "concat": {"mae": 0.797}}}
    rows = [{"id": "method/predict/own", "source": "method", "metrics": {"mae": 0.81234, "mse": 1.0}}]
    t = paper_table(_results(paper, rows))
    assert t.rows == [["paper: omib", "0.709", "86.90"], ["paper: concat", "0.797", "—"],
                      ["ours (ova_ib)", "0.812", "—"]]
    assert paper_table(_results(None)) is None and "Paper vs ours" not in render_markdown(_results(None))
    c = paper_comparison(_results({**paper, "row": "method/nothing"}, rows))
    assert c["ours"] == {"method": "ova_ib", "row": None, "values": {"mae": None, "acc2": None}}


@pytest.mark.parametrize("change, pattern", [
    ({"metric": None}, r"paper\.metric: expected a metric name"),
    ({"reported": {"a": "high"}}, r"paper\.reported\.a: expected a finite number"),
    ({"metric": ["mae"], "reported": {"a": 1.0}}, r"paper\.reported\.a: expected a mapping"),
    ({"scale": 0}, r"paper\.scale: expected a positive number"),
    ({"protocol": "probes"}, r"paper\.protocol: expected one of probe"),
    ({"source": ""}, r"paper\.source: expected a non-empty string"),
    ({"table": 1}, r"paper: unknown key\(s\) table; valid: source"),
])
def test_bad_paper_blocks_name_the_key(change, pattern):
    paper = {"source": "X, Table 1", "metric": "accuracy", "reported": {"a": 1.0}, **change}
    with pytest.raises(MMIBError, match=pattern):
        check_paper_block(paper)

"""run_experiment: the dry run, the real-pair groups evaluated at a stage's end, the results tables."""
import json
import os

import gin
import numpy as np
import pytest

from dflow_tf.evaluation.pair_groups import evaluate_pair_groups, pair_groups
from dflow_tf.io.flow_files import write_flo, write_image
from dflow_tf.models.zero_flow import ZeroFlowModel
from dflow_tf.training.experiment import results_table, run_experiment


def _write_pair(folder, flow, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    h, w = flow.shape[:2]
    write_image(str(folder / "img1.png"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    write_image(str(folder / "img2.png"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    write_flo(str(folder / "flow.flo"), flow)


@pytest.fixture
def pairs_root(tmp_path):
    """Two groups: g1 with two pairs of constant flow (3, 4) and (0, 1), g2 with one of (6, 8)."""
    root = tmp_path / "pairs"
    for name, (u, v), seed in (("g1/a", (3, 4), 0), ("g1/b", (0, 1), 1), ("g2/c", (6, 8), 2)):
        _write_pair(root / name, np.tile(np.float32([u, v]), (32, 48, 1)), seed)
    (root / "notes").mkdir()  # not a pair folder: ignored
    return root


def _group_ids(root):
    return [(kind, label, [pair_id for pair_id, _ in readers]) for kind, label, readers in pair_groups(root)]


def test_pair_groups_are_the_first_folder_level(pairs_root):
    assert _group_ids(str(pairs_root)) == [("flow", "g1", ["g1/a", "g1/b"]), ("flow", "g2", ["g2/c"])]
    assert _group_ids(str(pairs_root / "g1")) == [("flow", "g1", ["a", "b"])]  # a root of pairs is one group
    _write_pair(pairs_root / "d", np.zeros((32, 48, 2), np.float32), 3)
    with pytest.raises(ValueError, match="both directly and in group folders"):
        pair_groups(str(pairs_root))
    with pytest.raises(FileNotFoundError, match="notes"):
        pair_groups(str(pairs_root / "notes"))
    with pytest.raises(FileNotFoundError, match="not a folder"):
        pair_groups(str(pairs_root / "missing"))


def test_zero_flow_epe_of_each_group_is_its_mean_ground_truth_speed(pairs_root, monkeypatch):
    walks = []
    walk = os.walk
    monkeypatch.setattr(os, "walk", lambda *args, **kwargs: walks.append(args) or walk(*args, **kwargs))
    results = evaluate_pair_groups(ZeroFlowModel(), str(pairs_root))
    assert len(walks) == 1  # the pairs are found once, then evaluated
    assert results["g1"]["num_images"] == 2 and results["g2"]["num_images"] == 1
    assert results["g1"]["epe_all/per_image_mean"] == pytest.approx((5.0 + 1.0) / 2, rel=1e-6)
    assert results["g2"]["epe_all/per_image_mean"] == pytest.approx(10.0, rel=1e-6)
    assert evaluate_pair_groups(ZeroFlowModel(), str(pairs_root), max_per_group=1)["g1"]["num_images"] == 1


def test_results_table_shows_optional_d1_and_the_real_pair_groups():
    summary = {"epe_all/pixel_pooled": 1.5, "epe_noc/pixel_pooled": 1.0, "epe_occ/pixel_pooled": 4.0,
               "fl_all/pixel_pooled": 10.0}
    pairs = {"sintel": {"epe_all/per_image_mean": 8.25, "epe_occ/per_image_mean": 20.5},
             "chairs": {"epe_all/per_image_mean": 5.125}}
    table = results_table({"teacher": summary, "student": {**summary, "d1_all/pixel_pooled": 3.5, "pairs": pairs},
                           "skipped": None})
    lines = table.splitlines()
    assert "d1 all" in lines[0] and "d1 noc" not in lines[0]
    assert lines[2].split()[-1] == "3.500" and lines[1].split()[-1] == "-"
    real = lines[lines.index("real pairs") + 1:]
    assert real[0].split() == ["stage", "chairs", "epe", "all", "sintel", "epe", "all", "sintel", "epe", "occ"]
    assert real[1].split() == ["student", "5.125", "8.250", "20.500"]
    assert "real pairs" not in results_table({"teacher": summary})
    # the evaluation tables' cells and layout: NaN (a region without pixels) as "-", no trailing spaces
    lines = results_table({"teacher": {**summary, "epe_occ/pixel_pooled": float("nan")}}).splitlines()
    assert lines[1].split() == ["teacher", "1.500", "1.000", "-", "10.000"]
    assert all(line == line.rstrip() for line in lines)


@pytest.fixture
def tiny_experiment(tmp_path):
    from dflow_tf import configurables  # noqa: F401  (every gin name)
    gin.clear_config()
    gin.parse_config(f"""
        train_stage.model_fn = @TwoFramePWC
        TwoFramePWC.num_levels = 4
        train_stage.dataset = "synthetic_flow/tiny"
        train_stage.data_dir = "{tmp_path / 'tfds'}"
        train_stage.batch_size = 2
        train_stage.num_steps = 50
        train_stage.eval_batch_size = 1
        train_stage.task = @UnsupervisedTask()
        UnsupervisedTask.loss = "photometric"
        UnsupervisedTask.occlusion = False
    """)
    yield tmp_path
    gin.clear_config()


def test_a_paused_stage_prints_one_line_and_the_later_stages_wait(tiny_experiment, capsys):
    gin.bind_parameter("train_stage.max_minutes", 1e-6)
    out = tiny_experiment / "run"
    assert run_experiment(output_dir=str(out), stages=["first", "second"]) is None
    printed = capsys.readouterr().out
    assert "[first] paused at step 1 of 50 (" in printed
    assert "In call to configurable" not in printed  # gin's call-stack lines stay off the console
    assert not (out / "second").exists() and not (out / "results.json").exists()


@pytest.mark.backend
def test_dry_run_trains_two_steps_and_evaluates_one_batch_and_one_pair_per_group(tiny_experiment, pairs_root):
    gin.bind_parameter("train_stage.eval_pairs", str(pairs_root))
    out = tiny_experiment / "run"
    results = run_experiment(output_dir=str(out), stages=["only"], dry_run=True)
    done = json.loads((out / "only" / "done.json").read_text())
    assert done["step"] == 2  # not the configured 50
    assert results["only"]["num_images"] == 1  # one batch of eval_batch_size 1 (the split has 2)
    assert {g: m["num_images"] for g, m in results["only"]["pairs"].items()} == {"g1": 1, "g2": 1}
    assert json.loads((out / "results.json").read_text())["only"]["pairs"]["g2"]["num_images"] == 1

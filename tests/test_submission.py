"""Benchmark submission writers and the command, read back with dflow_tf.io."""
import os
import zipfile

import numpy as np

from dflow_tf import io as flow_io, submission
from dflow_tf.evaluation.submission import (
    previous_frame_path,
    write_kitti_flow_file,
    write_sintel_flow_file,
    write_submission,
    zip_kitti,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KITTI_DUMMY = os.path.join(REPO, "tfds_builders", "kitti_flow", "dummy_data")
SINTEL_DUMMY = os.path.join(REPO, "tfds_builders", "sintel", "dummy_data")


def _fake_flow(rng, h=7, w=9):
    return rng.uniform(-300, 300, size=(h, w, 2)).astype(np.float32)


def test_kitti_files_and_zips_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    flows = {f"{i:06d}_10": _fake_flow(rng) for i in range(3)}
    for year in (2015, 2012):
        out = tmp_path / str(year)
        for example_id, flow in flows.items():
            path = write_kitti_flow_file(str(out), example_id, flow)
            assert path == str(out / "flow" / f"{example_id}.png")
        for example_id, flow in flows.items():
            back, valid = flow_io.read_kitti_flow(str(out / "flow" / f"{example_id}.png"))
            assert valid.all()
            np.testing.assert_allclose(back, flow, atol=0.5 / 64 + 1e-6)  # 1/64 px quantisation
        archive = zip_kitti(str(out), year)
        with zipfile.ZipFile(archive) as z:
            names = sorted(z.namelist())
            prefix = "flow/" if year == 2015 else ""
            assert names == [f"{prefix}{i}.png" for i in sorted(flows)]
            z.extract(names[1], tmp_path / f"unzipped{year}")
        back, _ = flow_io.read_kitti_flow(str(tmp_path / f"unzipped{year}" / names[1]))
        np.testing.assert_allclose(back, flows["000001_10"], atol=0.5 / 64 + 1e-6)


def test_sintel_tree_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    flows = {("clean", "alley_1/frame_0001"): _fake_flow(rng), ("final", "alley_1/frame_0001"): _fake_flow(rng),
             ("final", "market_5/frame_0049"): _fake_flow(rng)}
    for (pass_name, example_id), flow in flows.items():
        write_sintel_flow_file(str(tmp_path), pass_name, example_id, flow)
    for (pass_name, example_id), flow in flows.items():
        scene, frame = example_id.split("/")
        np.testing.assert_array_equal(flow_io.read_flo(str(tmp_path / pass_name / scene / f"{frame}.flo")), flow)
    assert sorted(os.listdir(tmp_path / "final")) == ["alley_1", "market_5"]


def _recording_predictor(seen):
    def predict(frames):
        seen.append(frames.shape[0])
        return np.full(frames.shape[1:3] + (2,), 1.5, np.float32)
    return predict


def test_kitti2015_test_split_of_the_dummy_data(tmp_path):
    seen = []
    result = write_submission(_recording_predictor(seen), 2, "kitti2015", str(tmp_path / "out"),
                                         data_dir=str(tmp_path / "tfds"), manual_dir=KITTI_DUMMY, progress=False)
    test_frames = sorted(n for n in os.listdir(os.path.join(KITTI_DUMMY, "kitti2015", "testing", "image_2"))
                         if n.endswith("_10.png"))
    assert result["files"] == len(test_frames) > 0 and set(seen) == {2}
    assert sorted(os.listdir(tmp_path / "out" / "flow")) == test_frames
    for name in test_frames:
        flow, valid = flow_io.read_kitti_flow(str(tmp_path / "out" / "flow" / name))
        frame = flow_io.read_image(os.path.join(KITTI_DUMMY, "kitti2015", "testing", "image_2", name))
        assert flow.shape[:2] == frame.shape[:2] and valid.all() and np.all(flow == 1.5)
    with zipfile.ZipFile(result["zip"]) as z:
        assert sorted(z.namelist()) == [f"flow/{n}" for n in test_frames]
    # a three-frame model reads frame _09 of the multi-view extension where it is unpacked
    seen.clear()
    result = write_submission(_recording_predictor(seen), 3, "kitti2015", str(tmp_path / "out3"),
                                         data_dir=str(tmp_path / "tfds"), manual_dir=KITTI_DUMMY,
                                         make_zip=False, progress=False)
    assert set(seen) == {3} and result["fallback"] == 0 and result["zip"] is None


def test_sintel_cli_with_zero_flow_on_the_dummy_data(tmp_path, capsys):
    out = tmp_path / "out"
    assert submission.main(["--checkpoint", "zero", "--benchmark", "sintel", "--out", str(out), "--quiet",
                            "--manual_dir", SINTEL_DUMMY, "--data_dir", str(tmp_path / "tfds")]) == 0
    assert "bundler" in capsys.readouterr().out
    test_root = os.path.join(SINTEL_DUMMY, "MPI-Sintel-complete", "test")
    for pass_name in ("clean", "final"):
        for scene in os.listdir(os.path.join(test_root, pass_name)):
            frames = sorted(os.listdir(os.path.join(test_root, pass_name, scene)))
            written = sorted(os.listdir(out / pass_name / scene))
            assert written == [f.replace(".png", ".flo") for f in frames[:-1]]  # frames 1 .. n-1
            shape = flow_io.read_image(os.path.join(test_root, pass_name, scene, frames[0])).shape
            flow = flow_io.read_flo(str(out / pass_name / scene / written[0]))
            assert flow.shape == shape[:2] + (2,) and not flow.any()


def test_previous_frame_lookup(tmp_path):
    scene = tmp_path / "MPI-Sintel-complete" / "test" / "final" / "cave_3"
    scene.mkdir(parents=True)
    (scene / "frame_0004.png").write_bytes(b"")
    assert previous_frame_path("sintel", str(tmp_path), "sintel/final", "cave_3/frame_0005") == \
        str(scene / "frame_0004.png")
    assert previous_frame_path("sintel", str(tmp_path), "sintel/final", "cave_3/frame_0004") is None
    assert previous_frame_path("kitti2012", KITTI_DUMMY, "kitti_flow/2012", "000000_10").endswith(
        os.path.join("testing", "colored_0", "000000_09.png"))

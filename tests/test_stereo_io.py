"""Disparity files (KITTI 16-bit PNG, PFM), the stereo folder layouts and the real Motorcycle pairs."""
import cv2
import numpy as np
import pytest

from dflow_tf import io as flow_io
from dflow_tf.io.flow_files import (
    FlowFileError,
    read_disparity,
    read_kitti_disparity,
    read_occlusion_mask,
    read_pfm_disparity,
    write_disparity,
    write_kitti_disparity,
    write_pfm_disparity,
)
from dflow_tf.io.pair_folders import find_pairs
from dflow_tf.io.stereo_folders import is_stereo_folder, read_stereo_folder, read_stereo_pair, skimage_motorcycle


def test_kitti_disparity_png_known_values(tmp_path):
    raw = np.array([[0, 1, 256], [25600, 65535, 300]], np.uint16)  # written independently with OpenCV
    cv2.imwrite(str(tmp_path / "raw.png"), raw)
    disparity, valid = read_kitti_disparity(str(tmp_path / "raw.png"))
    np.testing.assert_array_equal(valid, [[False, True, True], [True, True, True]])
    np.testing.assert_allclose(disparity, raw / 256.0)
    # writing: round(d * 256), clipped to [1, 65535] where valid, 0 where not valid or not finite
    d = np.array([[0.0, 1.0, -2.0], [100.5, 300.0, np.nan], [0.001, 3.14159, 7.0]])
    valid = np.array([[True, True, True], [True, True, True], [True, True, False]])
    write_kitti_disparity(str(tmp_path / "d.png"), d, valid)
    stored = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16 and stored.shape == (3, 3)
    np.testing.assert_array_equal(stored, [[1, 256, 1], [25728, 65535, 0], [1, 804, 0]])
    back, back_valid = read_disparity(str(tmp_path / "d.png"))
    np.testing.assert_array_equal(back_valid, stored > 0)
    assert abs(back[2, 1] - 3.14159) <= 1 / 512


def test_pfm_disparity_rows_bottom_up_and_inf_invalid(tmp_path):
    # A PFM written byte by byte: 'Pf', 3 x 2, little-endian, the bottom row first.
    top, bottom = [1.0, 2.0, np.inf], [4.0, 5.5, 6.0]
    data = b"Pf\n3 2\n-1.0\n" + np.array(bottom + top, "<f4").tobytes()
    (tmp_path / "d.pfm").write_bytes(data)
    disparity, valid = read_pfm_disparity(str(tmp_path / "d.pfm"))
    np.testing.assert_array_equal(disparity, [[1, 2, 0], [4, 5.5, 6]])
    np.testing.assert_array_equal(valid, [[1, 1, 0], [1, 1, 1]])
    write_disparity(str(tmp_path / "w.pfm"), np.array([[1, 2, 9], [4, 5.5, 6]]), valid)
    assert (tmp_path / "w.pfm").read_bytes() == data  # +inf where not valid, rows bottom-up
    write_pfm_disparity(str(tmp_path / "n.pfm"), np.array([[np.nan, 1.0]]))
    np.testing.assert_array_equal(read_pfm_disparity(str(tmp_path / "n.pfm"))[1], [[False, True]])


def test_disparity_files_bad_input_names_the_file(tmp_path):
    flow_io.write_pfm(str(tmp_path / "rgb.pfm"), np.zeros((2, 2, 3), np.float32))
    with pytest.raises(FlowFileError, match="rgb.pfm: a disparity PFM has 1 channel"):
        read_pfm_disparity(str(tmp_path / "rgb.pfm"))
    flow_io.write_image(str(tmp_path / "eight.png"), np.zeros((2, 2), np.uint8))
    with pytest.raises(FlowFileError, match="eight.png: not a KITTI disparity PNG"):
        read_kitti_disparity(str(tmp_path / "eight.png"))
    (tmp_path / "cut.pfm").write_bytes(b"Pf\n3 2\n-1.0\n" + b"\0" * 8)
    with pytest.raises(FlowFileError, match="cut.pfm: PFM data size mismatch"):
        read_disparity(str(tmp_path / "cut.pfm"))
    with pytest.raises(FlowFileError, match="d.flo: unknown disparity format"):
        write_disparity(str(tmp_path / "d.flo"), np.zeros((2, 2)))
    with pytest.raises(FlowFileError, match="d.png: cannot write disparity of shape"):
        write_disparity(str(tmp_path / "d.png"), np.zeros((2, 2, 2)))
    with pytest.raises(FlowFileError, match="valid mask shape"):
        write_disparity(str(tmp_path / "d.png"), np.zeros((2, 2)), np.ones((2, 3), bool))
    flow_io.write_image(str(tmp_path / "mask.png"), np.array([[0, 128], [255, 7]], np.uint8))
    with pytest.raises(FlowFileError, match="mask.png: mask values must be 0, 128 or 255; found 7"):
        read_occlusion_mask(str(tmp_path / "mask.png"))


def _kitti_16(path, disparity, valid):
    cv2.imwrite(str(path), np.where(valid, np.round(disparity * 256), 0).astype(np.uint16))


def _make_stereo_root(root, rng):
    """A Middlebury folder (nested) and a KITTI 2015 folder with two pairs, one without ground truth."""
    h, w = 6, 8
    mb = root / "mb" / "scene"
    mb.mkdir(parents=True)
    for name in ("im0.png", "im1.png"):
        flow_io.write_image(str(mb / name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    gt = rng.uniform(1, 20, (h, w)).astype(np.float32)
    gt[0, :3] = np.inf
    flow_io.write_pfm(str(mb / "disp0GT.pfm"), gt)
    mask = np.full((h, w), 255, np.uint8)
    mask[0, :3] = 0
    mask[2:4, 5:] = 128
    flow_io.write_image(str(mb / "mask0nocc.png"), mask)
    kitti = root / "kitti"
    for sub in ("image_2", "image_3", "disp_occ_0", "disp_noc_0", "calib"):
        (kitti / sub).mkdir(parents=True)
    for stem in ("000000_10", "000000_11"):
        for sub in ("image_2", "image_3"):
            flow_io.write_image(str(kitti / sub / f"{stem}.png"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    kgt = np.round(rng.uniform(1, 50, (h, w)) * 256) / 256
    occ_valid = rng.uniform(size=(h, w)) < 0.7
    noc_valid = occ_valid & (rng.uniform(size=(h, w)) < 0.6)
    _kitti_16(kitti / "disp_occ_0" / "000000_10.png", kgt, occ_valid)
    _kitti_16(kitti / "disp_noc_0" / "000000_10.png", kgt, noc_valid)
    return {"mb": (gt, mask), "kitti": (kgt, occ_valid, noc_valid)}


def test_stereo_layouts(tmp_path):
    truth = _make_stereo_root(tmp_path, np.random.default_rng(0))
    pairs = find_pairs(str(tmp_path)).stereo
    assert [pair_id for pair_id, _ in pairs] == ["kitti/000000_10", "kitti/000000_11", "mb/scene"]
    assert is_stereo_folder(str(tmp_path / "kitti")) and is_stereo_folder(str(tmp_path / "mb" / "scene"))
    assert not is_stereo_folder(str(tmp_path / "mb"))
    # Middlebury: +inf -> not valid, mask 128 -> occluded
    gt, mask = truth["mb"]
    sample = read_stereo_folder(str(tmp_path / "mb" / "scene"))
    assert sample["left"].shape == (6, 8, 3) and sample["left"].dtype == np.uint8
    np.testing.assert_array_equal(sample["valid"], np.isfinite(gt))
    np.testing.assert_array_equal(sample["occluded"], mask == 128)
    np.testing.assert_allclose(sample["disparity"], np.where(np.isfinite(gt), gt, 0))
    assert read_stereo_folder(str(tmp_path / "kitti")) is None
    # KITTI: all-pixel ground truth from disp_occ_0, occluded = in disp_occ_0 but not disp_noc_0
    kgt, occ_valid, noc_valid = truth["kitti"]
    sample = read_stereo_pair(dict(pairs)["kitti/000000_10"])
    np.testing.assert_array_equal(sample["valid"], occ_valid)
    np.testing.assert_array_equal(sample["occluded"], occ_valid & ~noc_valid)
    np.testing.assert_allclose(sample["disparity"], np.where(occ_valid, kgt, 0))
    no_gt = read_stereo_pair(dict(pairs)["kitti/000000_11"])
    assert no_gt["disparity"] is None and no_gt["valid"] is None and no_gt["right"].shape == (6, 8, 3)
    # only disp_noc_0: valid = non-occluded pixels, no occlusion mask
    (tmp_path / "kitti" / "disp_occ_0" / "000000_10.png").unlink()
    sample = read_stereo_pair(dict(find_pairs(str(tmp_path / "kitti")).stereo)["kitti/000000_10"])
    np.testing.assert_array_equal(sample["valid"], noc_valid)
    assert sample["occluded"] is None
    # a root that is itself a Middlebury folder is named after itself
    assert [i for i, _ in find_pairs(str(tmp_path / "mb" / "scene")).stereo] == ["scene"]


def test_stereo_folder_size_mismatch_names_the_file(tmp_path):
    _make_stereo_root(tmp_path, np.random.default_rng(1))
    folder = tmp_path / "mb" / "scene"
    flow_io.write_image(str(folder / "im1.png"), np.zeros((6, 7, 3), np.uint8))
    with pytest.raises(FlowFileError, match="im1.png: right frame size"):
        read_stereo_folder(str(folder))
    flow_io.write_image(str(folder / "im1.png"), np.zeros((6, 8, 3), np.uint8))
    flow_io.write_pfm(str(folder / "disp0GT.pfm"), np.zeros((5, 8), np.float32))
    with pytest.raises(FlowFileError, match=r"disp0GT.pfm: size \(5, 8\) differs"):
        read_stereo_folder(str(folder))


def _matching_error(sample, disparity):
    """Mean |left(x) - right(x - d)| (grey, nearest pixel) over valid pixels whose match is inside."""
    left, right = sample["left"].astype(float).mean(-1), sample["right"].astype(float).mean(-1)
    h, w = left.shape
    ys, xs = np.mgrid[:h, :w]
    xr = np.round(xs - disparity).astype(int)
    inside = sample["valid"] & (xr >= 0) & (xr < w)
    return float(np.abs(left[inside] - right[ys[inside], xr[inside]]).mean())


def test_flowdata_motorcycle_reads_with_its_known_counts(flowdata):
    pairs = find_pairs(str(flowdata)).stereo
    assert [i for i, _ in pairs] == ["stereo/mb2014Q_Motorcycle"]
    sample = read_stereo_pair(pairs[0][1])
    assert sample["left"].shape == (497, 741, 3)
    # counts of mask0nocc.png: 7684 without ground truth (= the +inf pixels), 41515 occluded
    assert int((~sample["valid"]).sum()) == 7684 and int(sample["occluded"].sum()) == 41515
    d = sample["disparity"][sample["valid"]]
    assert 9.0 < d.min() < d.max() < 63.0  # calib.txt: vmin 7, vmax 65
    # the ground truth is a left -> right correspondence x -> x - d: it matches far better than 0 or x + d
    err = _matching_error(sample, sample["disparity"])
    assert err < 12 and 3 * err < _matching_error(sample, 0 * sample["disparity"])
    assert 3 * err < _matching_error(sample, -sample["disparity"])


def test_skimage_motorcycle_offline():
    sample = skimage_motorcycle()  # bundled with scikit-image: no download
    assert sample["left"].shape == sample["right"].shape == (500, 741, 3)
    assert sample["occluded"] is None and np.isfinite(sample["disparity"]).all()
    assert 0.05 < 1 - sample["valid"].mean() < 0.1  # +inf where there is no ground truth
    err = _matching_error(sample, sample["disparity"])
    assert 3 * err < _matching_error(sample, -sample["disparity"])  # x -> x - d, as the Middlebury files


def test_skimage_motorcycle_without_its_files_is_one_clear_error(monkeypatch, capsys):
    import skimage.data

    def download(*args, **kwargs):  # what a scikit-image without the bundled files does offline
        raise ConnectionError("pooch: cannot reach the data server")

    monkeypatch.setattr(skimage.data, "stereo_motorcycle", download)
    with pytest.raises(FileNotFoundError, match="skimage:motorcycle: scikit-image .* cannot provide the Motorcycle "
                                                "pair offline .ConnectionError: pooch"):
        skimage_motorcycle()
    from dflow_tf import evaluate
    assert evaluate.main(["--checkpoint", "zero", "--stereo", "skimage:motorcycle"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: skimage:motorcycle: scikit-image")

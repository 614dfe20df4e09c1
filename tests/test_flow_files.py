"""Flow / disparity / image / mask readers and writers: layouts, round trips, errors, real files."""
import struct

import cv2
import numpy as np
import pytest

from dflow_tf.io import (
    FlowFileError,
    read_flo,
    read_image,
    read_kitti_flow,
    read_mask,
    read_pfm,
    write_flo,
    write_image,
    write_kitti_flow,
    write_pfm,
)

RNG = np.random.default_rng(0)


def _flow(h=5, w=7):
    return (RNG.standard_normal((h, w, 2)) * 20).astype(np.float32)


# ------------------------------------------------------------------------------------- layouts

def test_flo_layout_written_by_hand(tmp_path):
    flow = _flow(3, 4)
    path = tmp_path / "hand.flo"
    path.write_bytes(struct.pack("<fii", 202021.25, 4, 3) + struct.pack("<24f", *flow.ravel()))
    got = read_flo(path)
    assert got.dtype == np.float32 and got.shape == (3, 4, 2)
    np.testing.assert_array_equal(got, flow)


def test_flo_round_trip_and_bytes(tmp_path):
    flow = _flow()
    path = tmp_path / "a.flo"
    write_flo(path, flow)
    raw = path.read_bytes()
    assert raw[:4] == b"PIEH"
    assert struct.unpack("<ii", raw[4:12]) == (7, 5)
    assert len(raw) == 12 + 5 * 7 * 2 * 4
    # First pixel (0, 0) is (u, v) interleaved, then pixel (x=1, y=0).
    assert struct.unpack("<4f", raw[12:28]) == tuple(float(x) for x in flow[0, :2].ravel())
    np.testing.assert_array_equal(read_flo(str(path)), flow)


def test_kitti_png_written_by_hand(tmp_path):
    # R = u * 64 + 2^15, G = v * 64 + 2^15, B = valid; OpenCV writes BGR order.
    r = np.array([[32768 + 64, 32768 - 32]], np.uint16)
    g = np.array([[32768, 32768 + 640]], np.uint16)
    b = np.array([[1, 0]], np.uint16)
    path = tmp_path / "hand.png"
    cv2.imwrite(str(path), np.stack([b, g, r], axis=-1))
    flow, valid = read_kitti_flow(path)
    assert flow.dtype == np.float32 and valid.dtype == bool
    np.testing.assert_array_equal(flow, [[[1.0, 0.0], [-0.5, 10.0]]])
    np.testing.assert_array_equal(valid, [[True, False]])


def test_kitti_round_trip_rounds_to_1_64(tmp_path):
    flow = _flow(6, 9)
    valid = RNG.random((6, 9)) > 0.3
    path = tmp_path / "k.png"
    write_kitti_flow(path, flow, valid)
    got, got_valid = read_kitti_flow(path)
    np.testing.assert_allclose(got, np.round(flow.astype(np.float64) * 64) / 64, atol=1e-6)
    np.testing.assert_array_equal(got_valid, valid)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16


def test_kitti_clips_and_defaults_valid(tmp_path):
    flow = np.array([[[1000.0, -1000.0]]], np.float32)  # beyond the +-512 px the format can hold
    path = tmp_path / "clip.png"
    write_kitti_flow(path, flow)
    got, valid = read_kitti_flow(path)
    np.testing.assert_allclose(got, [[[(65535 - 32768) / 64, -32768 / 64]]])
    assert valid.all()


def test_pfm_big_endian_bottom_up_by_hand(tmp_path):
    rows_top_down = np.array([[1, 2, 3], [4, 5, 6]], np.float32)
    path = tmp_path / "be.pfm"
    data = rows_top_down[::-1].astype(">f4").tobytes()  # stored bottom-up
    path.write_bytes(b"Pf\n3 2\n1.0\n" + data)
    got = read_pfm(path)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, rows_top_down)


def test_pfm_round_trip_grey_and_colour(tmp_path):
    grey = RNG.standard_normal((4, 6)).astype(np.float32)
    grey[0, 0] = np.inf
    colour = RNG.standard_normal((3, 5, 3)).astype(np.float32)
    write_pfm(tmp_path / "g.pfm", grey)
    write_pfm(tmp_path / "c.pfm", colour)
    raw = (tmp_path / "g.pfm").read_bytes()
    assert raw.startswith(b"Pf\n6 4\n-")
    # Little-endian, bottom row first.
    assert struct.unpack("<f", raw[-24:-20])[0] == grey[0, 0]
    np.testing.assert_array_equal(read_pfm(tmp_path / "g.pfm"), grey)
    np.testing.assert_array_equal(read_pfm(tmp_path / "c.pfm"), colour)


def test_ppm_read_by_hand_is_rgb(tmp_path):
    path = tmp_path / "a.ppm"
    path.write_bytes(b"P6\n2 1\n255\n" + bytes([255, 0, 0, 0, 10, 200]))
    np.testing.assert_array_equal(read_image(path), [[[255, 0, 0], [0, 10, 200]]])


@pytest.mark.parametrize("ext", [".png", ".ppm"])
def test_image_round_trip(tmp_path, ext):
    rgb = RNG.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    write_image(tmp_path / f"i{ext}", rgb)
    got = read_image(tmp_path / f"i{ext}")
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, rgb)


def test_grey_image_expanded_and_mask(tmp_path):
    grey = np.array([[0, 128, 255]], np.uint8)
    cv2.imwrite(str(tmp_path / "m.png"), grey)
    np.testing.assert_array_equal(read_image(tmp_path / "m.png"), np.repeat(grey[..., None], 3, -1))
    mask = read_mask(tmp_path / "m.png")
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, [[False, False, True]])


# -------------------------------------------------------------------------------------- errors

def _raises_naming(path, fn, *args):
    with pytest.raises(FlowFileError) as info:
        fn(path, *args)
    assert path.name in str(info.value)
    return str(info.value)


def test_missing_files(tmp_path):
    for fn in (read_flo, read_kitti_flow, read_pfm, read_image, read_mask):
        msg = _raises_naming(tmp_path / "nothing_here.xyz", fn)
        assert "not found" in msg


def test_flo_errors(tmp_path):
    bad_magic = tmp_path / "bad_magic.flo"
    bad_magic.write_bytes(struct.pack("<fii", 1.0, 2, 2) + bytes(32))
    assert "magic" in _raises_naming(bad_magic, read_flo)

    short_header = tmp_path / "short_header.flo"
    short_header.write_bytes(b"PIEH\x02\x00")
    assert "truncated" in _raises_naming(short_header, read_flo)

    truncated = tmp_path / "truncated.flo"
    write_flo(truncated, _flow(4, 4))
    truncated.write_bytes(truncated.read_bytes()[:-5])
    assert "mismatch" in _raises_naming(truncated, read_flo)

    too_long = tmp_path / "too_long.flo"  # header says 3x2, data holds 4x4
    too_long.write_bytes(struct.pack("<fii", 202021.25, 3, 2) + bytes(4 * 4 * 2 * 4))
    assert "3x2" in _raises_naming(too_long, read_flo)

    negative = tmp_path / "negative.flo"
    negative.write_bytes(struct.pack("<fii", 202021.25, -1, 2))
    _raises_naming(negative, read_flo)


def test_pfm_errors(tmp_path):
    bad = tmp_path / "bad.pfm"
    bad.write_bytes(b"P5\n2 2\n-1.0\n" + bytes(16))
    assert "magic" in _raises_naming(bad, read_pfm)
    short = tmp_path / "short.pfm"
    short.write_bytes(b"Pf\n2 2\n-1.0\n" + bytes(15))
    assert "mismatch" in _raises_naming(short, read_pfm)
    header = tmp_path / "header.pfm"
    header.write_bytes(b"Pf\n2")
    assert "header" in _raises_naming(header, read_pfm)


def test_undecodable_and_wrong_kind_images(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not a png")
    for fn in (read_image, read_mask, read_kitti_flow):
        _raises_naming(junk, fn)
    eight_bit = tmp_path / "eight_bit.png"
    cv2.imwrite(str(eight_bit), np.zeros((2, 2, 3), np.uint8))
    assert "16-bit" in _raises_naming(eight_bit, read_kitti_flow)
    sixteen_bit = tmp_path / "sixteen_bit.png"
    cv2.imwrite(str(sixteen_bit), np.zeros((2, 2, 3), np.uint16))
    _raises_naming(sixteen_bit, read_image)


def test_writers_reject_wrong_shapes(tmp_path):
    _raises_naming(tmp_path / "w.flo", write_flo, np.zeros((4, 4, 3)))
    _raises_naming(tmp_path / "w.flo", write_flo, np.zeros((4, 2)))
    _raises_naming(tmp_path / "w.png", write_kitti_flow, np.zeros((4, 4)))
    _raises_naming(tmp_path / "w.png", write_kitti_flow, np.zeros((4, 4, 2)), np.ones((3, 4)))
    _raises_naming(tmp_path / "w.jpg", write_kitti_flow, np.zeros((4, 4, 2)))
    _raises_naming(tmp_path / "w.pfm", write_pfm, np.zeros((4, 4, 2)))
    _raises_naming(tmp_path / "w.png", write_image, np.zeros((4, 4, 2), np.uint8))
    _raises_naming(tmp_path / "w.png", write_image, np.zeros((4, 4, 3), np.float32))
    _raises_naming(tmp_path / "w.nosuchformat", write_image, np.zeros((4, 4, 3), np.uint8))
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------- real data

def _pairs(root):
    """(name, frame1, frame2, flow [H,W,2] with zeros where unknown, evaluation mask, shape)."""
    pairs = []
    for d in sorted((root / "chairs").iterdir()):
        flow = read_flo(d / "flow.flo")
        pairs.append((d.name, d / "img1.ppm", d / "img2.ppm", flow, np.ones(flow.shape[:2], bool),
                      (384, 512)))
    for d in sorted((root / "sintel").iterdir()):
        flow = read_flo(d / "flow.flo")
        mask = ~read_mask(d / "invalid.png") & ~read_mask(d / "occ.png")
        pairs.append((d.name, d / "img1.png", d / "img2.png", flow, mask, (436, 1024)))
    d = root / "middlebury" / "RubberWhale"
    flow = read_flo(d / "flow10.flo")
    known = np.all(np.abs(flow) < 1e9, axis=-1)
    pairs.append((d.name, d / "frame10.png", d / "frame11.png", np.where(known[..., None], flow, 0),
                  known, (388, 584)))
    d = root / "kitti2015" / "000000"
    flow, valid = read_kitti_flow(d / "flow.png")
    pairs.append(("kitti", d / "img1.png", d / "img2.png", flow, valid, (375, 1242)))
    d = root / "stereo" / "mb2014Q_Motorcycle"
    disp = read_pfm(d / "disp0GT.pfm")
    known = np.isfinite(disp)
    flow = np.stack([-np.where(known, disp, 0), np.zeros_like(disp)], axis=-1)
    pairs.append((d.name, d / "im0.png", d / "im1.png", flow, known & read_mask(d / "mask0nocc.png"),
                  disp.shape))
    return pairs


def test_real_files_decode_to_documented_shapes(flowdata):
    pairs = _pairs(flowdata)
    assert len(pairs) == 12
    for name, img1, img2, flow, mask, shape in pairs:
        assert flow.dtype == np.float32 and flow.shape == shape + (2,), name
        assert mask.dtype == bool and mask.shape == shape and mask.mean() > 0.1, name
        for img in (img1, img2):
            im = read_image(img)
            assert im.dtype == np.uint8 and im.shape == shape + (3,), name
    disp = read_pfm(flowdata / "stereo" / "mb2014Q_Motorcycle" / "disp0GT.pfm")
    assert disp.shape == (497, 741) and disp.dtype == np.float32
    finite = disp[np.isfinite(disp)]
    assert np.isinf(disp).any() and 0 < finite.min() and finite.max() < 100
    _, valid = read_kitti_flow(flowdata / "kitti2015" / "000000" / "flow.png")
    assert 0.05 < valid.mean() < 0.9  # sparse ground truth, not cut to 8 bits


def test_real_ground_truth_warps_frame2_onto_frame1(flowdata):
    for name, img1, img2, flow, mask, _ in _pairs(flowdata):
        im1 = read_image(img1).astype(np.float32)
        im2 = read_image(img2).astype(np.float32)
        h, w = flow.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
        inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        warped = cv2.remap(im2, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        sel = mask & inside
        err_gt = np.abs(warped - im1).mean(-1)[sel].mean()
        err_zero = np.abs(im2 - im1).mean(-1)[sel].mean()
        assert err_gt * 2 < err_zero, (name, err_gt, err_zero)

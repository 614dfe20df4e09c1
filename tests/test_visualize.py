"""Flow colour coding (Middlebury wheel) and error maps."""
import numpy as np
import pytest

from dflow_tf.io import error_map, flow_to_color, make_colorwheel, read_image, write_flow_png


def _reference_wheel():
    """The Middlebury colour wheel written out segment by segment (Baker et al. colorcode.cpp)."""
    ry, yg, gc, cb, bm, mr = 15, 6, 4, 11, 13, 6
    rows = []
    rows += [(255, np.floor(255 * i / ry), 0) for i in range(ry)]
    rows += [(255 - np.floor(255 * i / yg), 255, 0) for i in range(yg)]
    rows += [(0, 255, np.floor(255 * i / gc)) for i in range(gc)]
    rows += [(0, 255 - np.floor(255 * i / cb), 255) for i in range(cb)]
    rows += [(np.floor(255 * i / bm), 0, 255) for i in range(bm)]
    rows += [(255, 0, 255 - np.floor(255 * i / mr)) for i in range(mr)]
    return np.array(rows, float)


def test_colorwheel_matches_middlebury():
    wheel = make_colorwheel()
    assert wheel.shape == (55, 3)
    np.testing.assert_array_equal(wheel, _reference_wheel())


@pytest.mark.parametrize("u, v, expected", [
    (1.0, 0.0, (255, 0, 0)),      # right: red (wheel entry 0, as atan2(-0., -1) = -pi)
    (0.0, 1.0, (255, 229, 0)),    # down: yellow (half-way between wheel entries 13 and 14)
    (-1.0, 0.0, (0, 209, 255)),   # left: cyan-blue (wheel entry 27)
    (0.0, -1.0, (88, 0, 255)),    # up: blue-violet (half-way between wheel entries 40 and 41)
])
def test_known_hues_at_full_saturation(u, v, expected):
    flow = np.zeros((2, 2, 2), np.float32)
    flow[0, 0] = (u, v)
    color = flow_to_color(flow)
    np.testing.assert_allclose(color[0, 0].astype(int), expected, atol=1)
    np.testing.assert_array_equal(color[1, 1], (255, 255, 255))  # zero flow is white


def test_hue_is_continuous_across_plus_u():
    # Just below and just above the +u axis both land at the red end of the wheel.
    flow = np.array([[[1.0, 1e-6], [1.0, -1e-6], [1.0, 0.0]]], np.float32)
    np.testing.assert_allclose(flow_to_color(flow).astype(int), [[(255, 0, 0), (255, 0, 43), (255, 0, 0)]],
                               atol=1)


def test_zero_flow_white_and_shapes():
    color = flow_to_color(np.zeros((3, 5, 2), np.float32))
    assert color.dtype == np.uint8 and color.shape == (3, 5, 3)
    assert (color == 255).all()


def test_magnitude_sets_saturation_and_max_flow_normalises():
    flow = np.zeros((1, 3, 2), np.float32)
    flow[0, 0] = (5.0, 0.0)
    flow[0, 1] = (10.0, 0.0)
    flow[0, 2] = (20.0, 0.0)
    auto = flow_to_color(flow).astype(int)
    # Half the maximum: 1 - 0.5 * (1 - wheel) for wheel = (255, 0, 0) / 255.
    np.testing.assert_allclose(auto[0, 1], (255, 127, 127), atol=1)
    np.testing.assert_allclose(auto[0, 2], (255, 0, 0), atol=1)
    fixed = flow_to_color(flow, max_flow=10.0).astype(int)
    np.testing.assert_array_equal(fixed[0, 1], auto[0, 2])
    np.testing.assert_allclose(fixed[0, 2], (191, 0, 0), atol=1)  # beyond max: darkened x 0.75
    np.testing.assert_allclose(fixed[0, 0], auto[0, 1], atol=1)


def test_unknown_flow_is_black_and_ignored_for_the_maximum():
    flow = np.array([[[2.0, 0.0], [1e10, 0.0], [np.nan, 1.0]]], np.float32)
    color = flow_to_color(flow)
    np.testing.assert_allclose(color[0, 0].astype(int), (255, 0, 0), atol=1)
    assert (color[0, 1:] == 0).all()


def test_flow_to_color_rejects_bad_shape():
    with pytest.raises(ValueError, match="H, W, 2"):
        flow_to_color(np.zeros((4, 4, 3)))


def test_error_map():
    gt = np.zeros((2, 3, 2), np.float32)
    flow = gt.copy()
    flow[0, 1] = (3.0, 4.0)   # error 5 = max_error
    flow[0, 2] = (30.0, 0.0)  # saturates
    valid = np.ones((2, 3), bool)
    valid[1, 2] = False
    emap = error_map(flow, gt, valid, max_error=5.0)
    assert emap.dtype == np.uint8 and emap.shape == (2, 3, 3)
    assert (emap[1, 2] == 0).all()                     # invalid is black
    np.testing.assert_array_equal(emap[0, 0], emap[1, 0])
    assert not np.array_equal(emap[0, 0], emap[0, 1])  # zero vs large error differ
    np.testing.assert_array_equal(emap[0, 1], emap[0, 2])
    assert (emap[0, 0] > 0).any() and (emap[0, 0] != emap[0, 0].max()).any()  # not black, a hue
    np.testing.assert_array_equal(error_map(flow, gt, valid[..., None].astype(np.float32)), emap)


def test_write_flow_png_round_trip(tmp_path):
    flow = np.random.default_rng(0).standard_normal((6, 8, 2)).astype(np.float32)
    write_flow_png(tmp_path / "flow.png", flow, max_flow=3.0)
    np.testing.assert_array_equal(read_image(tmp_path / "flow.png"), flow_to_color(flow, 3.0))

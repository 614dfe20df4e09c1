"""Rendered motion on the fly (RenderedMotion) and textures from folders of images and videos
(TextureLibrary), checked against numpy: the ground truth warps frame 2 onto frame 1, a texture
folder of known colours textures the layers, samples are pure functions of (seed, split, index)."""
import cv2
import numpy as np
import pytest

from dflow_tf.data import schema
from dflow_tf.data.footage import FootageError
from dflow_tf.data.rendered_motion import RenderedMotion
from dflow_tf.data.textures import TextureLibrary
from numpy_reference import backward_warp

GREEN = (30, 220, 60)  # RGB
BLUE = (20, 40, 200)


@pytest.fixture(scope="module")
def texture_dir(tmp_path_factory):
    """A folder of frames (two solid green PNGs) and a solid blue video of 12 frames."""
    root = tmp_path_factory.mktemp("textures")
    (root / "frames").mkdir()
    for i in range(2):
        cv2.imwrite(str(root / "frames" / f"{i:03d}.png"), np.full((90, 120, 3), GREEN[::-1], np.uint8))
    writer = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for _ in range(12):
        writer.write(np.full((120, 160, 3), BLUE[::-1], np.uint8))
    writer.release()
    (root / "notes.txt").write_text("not a frame")
    return root


def test_texture_library_reads_frames_and_videos_and_crops_them(texture_dir):
    library = TextureLibrary([str(texture_dir)], frames_per_clip=5)
    assert len(library) == 2 + 5  # the folder's two frames, five of the video's twelve
    rng = np.random.default_rng(0)
    colours = set()
    for _ in range(20):
        crop = library.crop(rng, 200, 300)  # larger than every frame: enlarged
        assert crop.shape == (200, 300, 3) and crop.dtype == np.float32
        mean = np.round(crop.reshape(-1, 3).mean(0) * 255).astype(int)
        assert np.abs(crop * 255 - mean).max() < 4  # a solid colour stays solid
        colours.add(min((GREEN, BLUE), key=lambda c: np.abs(mean - c).sum()))
        assert min(np.abs(mean - c).max() for c in (GREEN, BLUE)) <= 4  # MJPG's rounding
    assert colours == {GREEN, BLUE}


def test_texture_library_without_frames_names_the_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing to see")
    with pytest.raises(FootageError, match=str(tmp_path)):
        TextureLibrary(str(tmp_path))


def test_samples_are_pure_functions_of_seed_split_and_index():
    source = RenderedMotion(frame_size=(64, 96), max_translation=8.0, validation_size=3)
    a, b = source.render("train", 7, seed=2), source.render("train", 7, seed=2)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], source.render("train", 8, seed=2)[0])
    assert not np.array_equal(a[0], source.render("validation", 7, seed=2)[0])
    ids = [i.decode() for batch in source.make_dataset("validation", batch_size=2, repeat=False,
                                                       drop_remainder=False, augmentation=None)
           for i in batch[schema.ID].numpy()]
    assert ids == ["validation_0", "validation_1", "validation_2"]


def test_ground_truth_warps_frame_2_onto_frame_1_where_visible():
    source = RenderedMotion(frame_size=(96, 128), max_translation=12.0, max_illumination=0.0)
    errors, zero_errors = [], []
    for index in range(4):
        frames, flow, occlusion = source.render("train", index, seed=5)
        first, second = frames[0] / 255.0, frames[1] / 255.0
        warped = backward_warp(second[None], flow[None])[0][0]
        xs, ys = np.meshgrid(np.arange(128), np.arange(96))
        target_x, target_y = xs + flow[..., 0], ys + flow[..., 1]
        leaves = (target_x < 0) | (target_x > 127) | (target_y < 0) | (target_y > 95)
        assert occlusion[leaves].min() == 1.0  # leaving the frame is occlusion
        visible = occlusion[..., 0] == 0
        errors.append(np.abs(warped - first)[visible].mean())
        zero_errors.append(np.abs(second - first)[visible].mean())
    assert np.mean(errors) < 0.02
    assert np.mean(errors) < 0.25 * np.mean(zero_errors)


def test_a_texture_folder_textures_the_layers(texture_dir):
    source = RenderedMotion(frame_size=(64, 96), texture_dirs=[str(texture_dir / "frames")],
                            max_illumination=0.0)
    frames = np.concatenate([source.render("train", i, seed=1)[0][0].reshape(-1, 3) for i in range(6)])
    green = np.abs(frames.astype(int) - GREEN).max(axis=1) <= 2
    assert green.mean() > 0.2  # most layers take the folder's texture (60 % of draws)
    without = RenderedMotion(frame_size=(64, 96), max_illumination=0.0)
    frames = np.concatenate([without.render("train", i, seed=1)[0][0].reshape(-1, 3) for i in range(6)])
    assert (np.abs(frames.astype(int) - GREEN).max(axis=1) <= 2).mean() < 0.01


def test_training_batches_have_the_schema_and_noise_is_an_option():
    source = RenderedMotion(frame_size=(64, 128), noise=0.02)
    batch = next(iter(source.make_dataset("train", batch_size=3, seed=1)))
    assert batch[schema.FRAMES].shape == (3, 2, 64, 128, 3) and batch[schema.FLOW].shape == (3, 64, 128, 2)
    assert float(batch[schema.VALID].numpy().min()) == 1.0
    clean = RenderedMotion(frame_size=(64, 128)).render("train", 0, seed=1)[0].astype(float)
    noisy = source.render("train", 0, seed=1)[0].astype(float)
    assert 2.0 < np.std(noisy - clean) < 8.0  # 0.02 * 255 = 5.1 grey levels, clipped at 0 and 255
    with pytest.raises(ValueError, match="splits"):
        source.make_dataset("test", batch_size=1)

"""tf.data input pipelines: from any `tfds_builders` split to augmented, batched samples.

    ds = make_dataset("kitti_flow/2015_multiview", "train+test", batch_size=4, crop_size=(320, 896),
                      num_frames=3, seed=1)
    for batch in ds: batch["frames"]  # float32 [4, 3, 320, 896, 3] in [0, 1]

Order of operations per example: decode the PNG frames of the selected window (`num_frames`,
centred on the reference pair), optional `resize_to` (sparse-aware for KITTI), pad / crop to
`crop_size` (random offset when augmenting, centred otherwise), then flips, channel permutation
and optional photometric jitter (`augment.Augmentation`).

Reproducible and resumable: files are read in an order fixed by `seed`, the shuffle buffer is
seeded, and every random transform is stateless with the seed (seed, n) where n is the example's
position in the output stream (`Dataset.enumerate`). The iterator can be saved with
`tf.train.Checkpoint(iterator=iter(ds))`; its state holds the examples the file reader has in
flight (`READ_CYCLE_LENGTH` shards, one example from each in turn), the shuffle buffer (up to
`shuffle_buffer` encoded examples) and the decoded samples in flight in the map and prefetch
buffers. On synthetic_flow (about 4 MB per encoded example: five frames and their sequence
ground truth) gin/distill.gin's checkpoints measure 0.36-0.45 GB (2026-12-01, commit 2e3d36d);
tfds' default reader (16 shards in blocks of 16) makes them 0.4-2.0 GB, and 1.74 GB on
large_motion at 256x384. Symbolic checkpoints (`tf.data.Options.experimental_symbolic_checkpoint`)
would store 158 MB, but in TensorFlow 2.21 a pipeline restored from one stops after about 200
batches (its shuffle buffer waits for the file reader forever, with and without parallel file
reads), so they are not used.
"""
import os

import tensorflow as tf
import tensorflow_datasets as tfds

from dflow_tf.data import augment as aug, frame_windows, schema
from dflow_tf.data.seeds import split_seed

SPARSE_BUILDERS = ("kitti_flow", "kitti_stereo")
#: Shards read at once, one example from each in turn. tfds' default (16 shards, blocks of 16)
#: keeps up to 16 x 16 encoded examples in flight, all of which an iterator checkpoint stores.
READ_CYCLE_LENGTH = 4


def is_saved_dataset(source):
    """True if `source` is a folder written by tf.data.Dataset.save (e.g. precomputed teacher
    targets); make_dataset then reads it instead of a builder and ignores `split`."""
    return isinstance(source, str) and tf.io.gfile.exists(os.path.join(source, "dataset_spec.pb"))


def get_builder(source, data_dir=None, manual_dir=None, prepare=True):
    """A prepared `tfds` builder from "name[/config]" or a builder instance.

    With `prepare`, runs `download_and_prepare` (a no-op when the data exist; synthetic_flow is
    rendered then, the others read `manual_dir`, default <data_dir>/downloads/manual).

    Raises:
      dflow_tf.console.InputError: `source` names no known dataset or config; the message lists
        the project's datasets (the tfds_builders names and configs) and source classes.
    """
    # pylint: disable=import-outside-toplevel
    import tfds_builders
    if not isinstance(source, str):
        builder = source
    else:
        name, _, config = source.split(":")[0].partition("/")
        known = {cls.name: [c.name for c in cls.BUILDER_CONFIGS]
                 for cls in (getattr(tfds_builders, n) for n in tfds_builders.__all__)}
        problem = None
        if config and config not in known.get(name, [config]):
            problem = f"no config {config!r} of dataset {name!r}"
        else:
            try:
                builder = tfds.builder(source, data_dir=data_dir)
            except tfds.core.registered.DatasetNotFoundError:  # its message lists every tfds dataset
                problem = f"unknown dataset {name!r}"
        if problem:
            import importlib
            import inspect
            import pkgutil

            import dflow_tf.data
            from dflow_tf.console import InputError
            datasets = ", ".join(f"{n}/{{{', '.join(c)}}}" if c else n for n, c in sorted(known.items()))
            sources = []  # the classes of dflow_tf.data that duck-type a builder or make their own batches
            for module_info in pkgutil.iter_modules(dflow_tf.data.__path__):
                try:
                    module = importlib.import_module(f"dflow_tf.data.{module_info.name}")
                except Exception:  # pylint: disable=broad-except  (a list for a message only)
                    continue
                sources += [f"@{n}()" for n, c in vars(module).items()
                            if inspect.isclass(c) and c.__module__ == module.__name__ and not n.startswith("_")
                            and (hasattr(c, "as_dataset") or hasattr(c, "make_dataset"))
                            and not issubclass(c, tfds.core.DatasetBuilder)]
            sources = ", ".join(sorted(sources))
            raise InputError(f"{problem}; the project's datasets: {datasets}; or a source object: {sources}; "
                             "or the folder of a saved dataset (docs/datasets.md)")
    if prepare:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return builder


def read_examples(builder, split, shuffle=True, seed=0):
    """Stored examples of `split`, still encoded: frames string [N] (PNG), the ground-truth
    tensors as stored (see `decode`). Encoded examples keep shuffle buffers and iterator
    checkpoints small."""
    features = builder.info.features
    decoders = {key: tfds.decode.SkipDecoding()
                for key in (schema.FRAMES, *schema.FLOW_KEYS, *schema.MASK_KEYS) if key in features}
    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False,
                                  interleave_cycle_length=READ_CYCLE_LENGTH, interleave_block_length=1)
    return builder.as_dataset(split=split, shuffle_files=shuffle, read_config=read_config,
                              decoders=decoders)


def decode(example, features, num_frames=None):
    """An encoded example (`read_examples`) -> a sample of `augment`, except that the frames
    stay uint8 [N, H, W, 3] (cropping before the conversion to float is cheaper; see `to_float`).

    features: the builder's `info.features` (decodes the stored ground truth).
    num_frames: keep a window of this many frames centred on the reference pair (the reference
    pair stays the ground truth's pair); None keeps all. Sequence ground truth is cut alike.
    """
    stored = example[schema.FRAMES].shape[0]
    n = stored if num_frames is None else num_frames
    if not 2 <= n <= stored:
        raise ValueError(f"num_frames={num_frames}: the dataset stores windows of {stored} frames")
    start = frame_windows.reference_index(stored) - frame_windows.reference_index(n)
    encoded = tf.unstack(example[schema.FRAMES][start:start + n], num=n)
    sample = {
        schema.ID: example[schema.ID],
        schema.FRAMES: tf.stack([tf.io.decode_png(e, channels=3) for e in encoded]),
        schema.HAS_FLOW: example[schema.HAS_FLOW],
        schema.HAS_OCCLUSION: example[schema.HAS_OCCLUSION],
    }
    if schema.STEREO in example:  # the stereo builders (pairs: n = 2)
        sample[schema.STEREO] = example[schema.STEREO]
    for key in (*schema.FLOW_KEYS, *schema.MASK_KEYS):
        if key in example:
            value = tf.cast(features[key].decode_example(example[key]), tf.float32)
            sample[key] = value[start:start + n - 1] if key in schema.SEQUENCE_KEYS else value
    return sample


def to_float(sample):
    """uint8 frames -> float32 in [0, 1] (a no-op on float frames)."""
    out = dict(sample)
    out[schema.FRAMES] = tf.image.convert_image_dtype(sample[schema.FRAMES], tf.float32)
    return out


def prepare_sample(example, seed, features, *, num_frames=None, crop_size=None, resize_to=None,
                   sparse=False, augmentation=aug.Augmentation()):
    """decode -> resize -> pad/crop -> augment, for one encoded example and its seed (int64 [2]).

    features=None: `example` is already decoded (a saved dataset, e.g. precomputed teacher
    targets) and keeps all its frames.
    """
    sample = decode(example, features, num_frames) if features is not None else dict(example)
    if resize_to is not None:
        sample = aug.resize(to_float(sample), resize_to, sparse)
    seed_crop, seed_aug = tf.unstack(split_seed(seed, 2))
    if crop_size is not None:
        random_crop = augmentation is not None and augmentation.random_crop
        sample = aug.pad_or_crop(sample, crop_size, seed_crop if random_crop else None)
    sample = to_float(sample)
    if augmentation is not None:
        sample = aug.augment(sample, seed_aug, augmentation)
    return sample


def build_pipeline(examples, features, *, batch_size, seed=0, shuffle=True, shuffle_buffer=64,
                   repeat=True, drop_remainder=True, **sample_kwargs):
    """Encoded examples (`read_examples`) -> shuffled, repeated, enumerated, mapped, batched,
    prefetched samples; `features` = the builder's `info.features`.

    `sample_kwargs` go to `prepare_sample` (num_frames, crop_size, resize_to, sparse,
    augmentation). Batching needs equal sizes: give `crop_size` (or `resize_to`) for KITTI.
    """
    ds = examples
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.enumerate()
    base = tf.constant(seed, tf.int64)

    def fn(index, example):
        return prepare_sample(example, tf.stack([base, index]), features, **sample_kwargs)

    ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def make_dataset(source, split, *, batch_size, crop_size=None, num_frames=None, resize_to=None,
                 augmentation=aug.Augmentation(), sparse=None, seed=0, shuffle=True,
                 shuffle_buffer=64, repeat=True, drop_remainder=True, data_dir=None,
                 manual_dir=None, prepare=True):
    """Batches of augmented samples from a builder split.

    Args:
      source: "name" or "name/config" of a `tfds_builders` builder (e.g. "synthetic_flow",
        "kitti_flow/2015_multiview", "sintel/final_3"), a builder instance (custom configs), the
        folder of a saved dataset of decoded samples (`is_saved_dataset`), or an object with a
        `make_dataset(split, **these arguments)` method that builds the batches itself
        (`dflow_tf.data.mixture.MixedSource`: several builders mixed per sample).
      split: a tfds split expression ("train", "train+test", "train[:90%]").
      batch_size: examples per batch.
      crop_size: (height, width) to pad / crop to; None keeps the stored size.
      num_frames: frames per sample (a centred sub-window of the stored ones); None = all.
      resize_to: (height, width) to resize to before cropping; None = no resize.
      augmentation: `augment.Augmentation`, or None for none (centred crop, no flips).
      sparse: resize ground truth as sparse; None = True for KITTI.
      seed: global seed of file order, shuffling and every random transform.
      shuffle, shuffle_buffer, repeat, drop_remainder: tf.data behaviour.
      data_dir, manual_dir, prepare: where the data are, see `get_builder`.

    Returns:
      tf.data.Dataset of dicts: frames [B, N, h, w, 3], flow [B, h, w, 2], valid / occlusion
      [B, h, w, 1], has_flow / has_occlusion [B], id [B], plus flow_fw / flow_bw /
      occlusion_fw / occlusion_bw [B, N-1, h, w, C] for synthetic_flow.
    """
    if callable(getattr(source, "make_dataset", None)):  # several builders (data.mixture.MixedSource)
        return source.make_dataset(split, batch_size=batch_size, seed=seed, shuffle=shuffle,
                                   shuffle_buffer=shuffle_buffer, repeat=repeat, drop_remainder=drop_remainder,
                                   data_dir=data_dir, manual_dir=manual_dir, prepare=prepare, sparse=sparse,
                                   num_frames=num_frames, crop_size=crop_size, resize_to=resize_to,
                                   augmentation=augmentation)
    if is_saved_dataset(source):
        examples, features = tf.data.Dataset.load(source), None
        sparse = bool(sparse)
    else:
        builder = get_builder(source, data_dir=data_dir, manual_dir=manual_dir, prepare=prepare)
        if sparse is None:
            sparse = builder.name in SPARSE_BUILDERS
        examples = read_examples(builder, split, shuffle=shuffle, seed=seed)
        features = builder.info.features
    return build_pipeline(examples, features, batch_size=batch_size, seed=seed,
                          shuffle=shuffle, shuffle_buffer=shuffle_buffer, repeat=repeat,
                          drop_remainder=drop_remainder, num_frames=num_frames,
                          crop_size=crop_size, resize_to=resize_to, sparse=sparse,
                          augmentation=augmentation)

"""A builder-like training source: several tfds builders as one, and splits chosen by example id.

`dflow_tf.data.make_dataset` (and so `train_stage.dataset`) accepts a builder instance in place of
a "name/config" string; `CombinedSource` is such an object, so gin files can use it directly:

    # KITTI 2015 with SelFlow's published 170 / 30 split of the training pairs
    train_stage.dataset = @CombinedSource()
    CombinedSource.sources = ["kitti_flow/2015"]
    CombinedSource.id_splits = {"train": ("train", "kitti2015_train"),
                                "validation": ("train", "kitti2015_val")}

    # Sintel clean + final together (the same split name is read from every source)
    CombinedSource.sources = ["sintel/clean", "sintel/final"]

Id lists are text files with one entry per line (blank lines and `#` comments ignored): a bare
name is a list shipped in `dflow_tf/data/splits/` (`kitti2015_train`, `kitti2015_val`), anything
else a path. An entry selects the examples whose id equals it or starts with it followed by `_` or
`/`: `000042` selects the KITTI pair `000042_10`, `alley_1` every Sintel window of that scene.

With several sources, shuffled reads interleave them at random (`sample_from_datasets`, seeded,
weighted by split size, every example once per pass); unshuffled reads concatenate them in order.
`combine` does this for both kinds of several sources: this module's (examples of one schema,
combined before decoding) and `dflow_tf.data.mixture.MixedSource`'s (samples of each source's own
pipeline, combined after it).
"""
import os
import re

import gin
import tensorflow as tf

from dflow_tf.data import schema

SPLITS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "splits")


def read_id_list(name_or_path):
    """Entries of an id list: a name in dflow_tf/data/splits/ (without .txt) or a file path."""
    path = name_or_path
    if os.sep not in name_or_path and "/" not in name_or_path and not name_or_path.endswith(".txt"):
        path = os.path.join(SPLITS_DIR, name_or_path + ".txt")
    if not os.path.isfile(path):
        shipped = sorted(f[:-4] for f in os.listdir(SPLITS_DIR) if f.endswith(".txt"))
        raise FileNotFoundError(f"id list {name_or_path!r} not found (looked for {path}; shipped lists: "
                                f"{', '.join(shipped)})")
    with open(path, encoding="utf-8") as f:
        entries = [line.split("#", 1)[0].strip() for line in f]
    entries = [e for e in entries if e]
    if not entries:
        raise ValueError(f"id list {path} is empty")
    return entries


def id_pattern(entries):
    """The RE2 pattern that matches the ids selected by `entries` (see the module docstring)."""
    return "(?:" + "|".join(re.escape(e) for e in entries) + ")(?:[_/].*)?"


def filter_by_ids(examples, entries):
    """Keeps the examples (dicts with a string `id`) whose id is selected by `entries`."""
    pattern = id_pattern(entries)
    return examples.filter(lambda ex: tf.strings.regex_full_match(ex[schema.ID], pattern))


def source_list(sources, owner):
    """`sources` ("name" or a list of names / builders) as a non-empty list; ValueError naming the
    binding `<owner>.sources` when it is empty."""
    if isinstance(sources, str):
        sources = [sources]
    if not sources:
        raise ValueError(f"{owner}.sources must name at least one dataset")
    return list(sources)


def combine(parts, weights, shuffle, seed=None):
    """One dataset of the datasets `parts` (one per source).

    shuffle: elements drawn at random, from part i with probability weights[i] / sum(weights)
    (`sample_from_datasets` with `seed`, until every part is exhausted: each element once per
    pass); else the parts concatenated in order. A single part is returned as it is.
    """
    if len(parts) == 1:
        return parts[0]
    if not shuffle:
        combined = parts[0]
        for ds in parts[1:]:
            combined = combined.concatenate(ds)
        return combined
    total = sum(weights) or 1.0
    return tf.data.Dataset.sample_from_datasets(parts, weights=[w / total for w in weights], seed=seed,
                                                stop_on_empty_dataset=False)


class _Info:
    def __init__(self, features):
        self.features = features


@gin.configurable
class CombinedSource:
    """Duck-types the part of a tfds builder that `make_dataset` uses (see the module docstring).

    Args:
      sources: "name/config" of `tfds_builders` builders with windows of the same length; a
        split name is read from each and the results are combined.
      id_splits: {split name: (base split, id list)}: the split is the examples of the base
        split selected by the id list; other split names (and expressions such as
        "train[:50%]") go to the builders unchanged.
      data_dir: tfds data directory of the sources (None: $TFDS_DATA_DIR or
        ~/tensorflow_datasets). `train_stage.data_dir` applies only to dataset names, so bind
        this one when the data live elsewhere; `train_stage.manual_dir` does apply.
    """

    def __init__(self, sources=gin.REQUIRED, id_splits=None, data_dir=None):
        self.sources = source_list(sources, "CombinedSource")
        self.id_splits = {name: (base, read_id_list(ids)) for name, (base, ids) in (id_splits or {}).items()}
        self.data_dir = data_dir
        self._builders = None

    @property
    def builders(self):
        if self._builders is None:
            import tensorflow_datasets as tfds

            import tfds_builders  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
            self._builders = [tfds.builder(s, data_dir=self.data_dir) for s in self.sources]
            lengths = {s: b.info.features[schema.FRAMES].shape[0] for s, b in zip(self.sources, self._builders)}
            if len(set(lengths.values())) > 1:
                raise ValueError(f"CombinedSource: the sources store windows of different lengths {lengths}")
        return self._builders

    @property
    def name(self):
        """The builders' common name (so that make_dataset's per-builder defaults apply)."""
        names = sorted({b.name for b in self.builders})
        return names[0] if len(names) == 1 else "+".join(names)

    @property
    def info(self):
        return _Info(self.builders[0].info.features)

    def download_and_prepare(self, download_config=None):
        for builder in self.builders:
            builder.download_and_prepare(download_config=download_config)
        self._builders = None  # builders made before the data existed know no splits: remake them

    def num_examples(self, split):
        """Examples of `split` over all sources (reads the ids once for an id split)."""
        ds = self.as_dataset(split, shuffle_files=False)
        return int(ds.reduce(0, lambda n, _: n + 1))

    def as_dataset(self, split, shuffle_files=False, read_config=None, decoders=None):
        base, entries = self.id_splits.get(split, (split, None))
        parts, sizes = [], []
        for builder in self.builders:
            ds = builder.as_dataset(split=base, shuffle_files=shuffle_files, read_config=read_config,
                                    decoders=decoders)
            if entries is not None:
                ds = filter_by_ids(ds, entries)
            parts.append(ds)
            sizes.append(float(builder.info.splits[base].num_examples))
        seed = read_config.shuffle_seed if read_config is not None else None
        return combine(parts, sizes, shuffle_files, seed)

"""Training on several datasets at once, each read and decoded by its own builder: temporal flow
pairs and rectified stereo pairs in one stage (Flow2Stereo's cross-view correspondences).

    train_stage.dataset = @MixedSource()
    MixedSource.sources = ["synthetic_flow", "synthetic_stereo"]
    MixedSource.weights = [0.5, 0.5]
    MixedSource.split_sources = {"validation": ["synthetic_stereo"]}

Unlike `sources.CombinedSource` (one builder's schema, windows of one length), every source goes
through `pipeline.build_pipeline` with its own features, so sources may store windows of
different lengths (synthetic_flow's five frames, the stereo pairs) and different keys: the samples
are cut to the training window the task asks for (`num_frames`; None, as in evaluation: the
shortest window any source stores, centred on the reference pair), to `crop_size`, and to the keys
every source has (sequence ground truth such as `flow_fw` is dropped when a source lacks it);
`stereo` is kept, False for samples of non-stereo sources. Shuffled reads mix the sources at
random per sample, unshuffled reads (evaluation) concatenate them in order (`sources.combine`, as
for a CombinedSource; `weights` default: proportional to split size). Each source's random
transforms use a seed of its own, split from the stage's seed (`seeds.split_int_seed`).
"""
import gin
import tensorflow as tf

from dflow_tf.data import schema
from dflow_tf.data.seeds import split_int_seed
from dflow_tf.data.sources import combine, source_list


@gin.configurable
class MixedSource:
    """Several "name[/config]" datasets (or builder instances) as one training source.

    Args:
      sources: the datasets; a split name is read from each.
      weights: sampling probability of each source in shuffled reads (normalised); None =
        proportional to the size of the split read.
      split_sources: {split name: names of the sources that supply it}, e.g. evaluate only on the
        stereo validation split; splits not listed are read from every source.
    """

    def __init__(self, sources=gin.REQUIRED, weights=None, split_sources=None):
        self.sources = source_list(sources, "MixedSource")
        if weights is not None and (len(weights) != len(self.sources) or min(weights) < 0 or sum(weights) <= 0):
            raise ValueError(f"MixedSource.weights {list(weights)} must be one non-negative weight per source "
                             f"({len(self.sources)}), not all zero")
        self.weights = None if weights is None else [float(w) for w in weights]
        self.split_sources = {split: list(names) for split, names in (split_sources or {}).items()}
        for split, names in self.split_sources.items():
            unknown = [n for n in names if n not in self.sources]
            if unknown or not names:
                raise ValueError(f"MixedSource.split_sources[{split!r}] = {names}: every name must be one of the "
                                 f"sources {self.sources}")

    def _selected(self, split):
        names = self.split_sources.get(split)
        return [i for i, s in enumerate(self.sources) if names is None or s in names]

    def make_dataset(self, split, *, batch_size, seed=0, shuffle=True, shuffle_buffer=64, repeat=True,
                     drop_remainder=True, data_dir=None, manual_dir=None, prepare=True, sparse=None,
                     **sample_kwargs):
        """Batches of samples of `split` from the selected sources, mixed per sample; arguments as
        `pipeline.make_dataset` (which calls this for a MixedSource). `sparse` None: per source."""
        from dflow_tf.data import pipeline  # pylint: disable=import-outside-toplevel  (pipeline calls us)

        chosen = self._selected(split)
        builders = {i: pipeline.get_builder(self.sources[i], data_dir=data_dir, manual_dir=manual_dir,
                                            prepare=prepare) for i in chosen}
        if sample_kwargs.get("num_frames") is None:  # all frames: the shortest stored window of the sources
            sample_kwargs["num_frames"] = min(b.info.features[schema.FRAMES].shape[0] for b in builders.values())
        parts, sizes = [], []
        source_seeds = split_int_seed(seed, len(self.sources))
        for i, builder in builders.items():
            source_sparse = builder.name in pipeline.SPARSE_BUILDERS if sparse is None else sparse
            source_seed = source_seeds[i]
            examples = pipeline.read_examples(builder, split, shuffle=shuffle, seed=source_seed)
            samples = pipeline.build_pipeline(examples, builder.info.features, batch_size=1, seed=source_seed,
                                              shuffle=shuffle, shuffle_buffer=shuffle_buffer, repeat=repeat,
                                              drop_remainder=False, sparse=source_sparse, **sample_kwargs)
            parts.append(samples.unbatch())
            sizes.append(float(builder.info.splits[split].num_examples))
        weights = [self.weights[i] for i in chosen] if self.weights is not None else sizes
        mixed = combine(_common_keys(parts), weights, shuffle, seed)
        return mixed.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def _common_keys(parts):
    """The sample datasets cut to the keys they all have, with `stereo` (False where absent) when
    any has it. Raises ValueError naming a key whose shape differs between sources."""
    specs = [ds.element_spec for ds in parts]
    keys = set.intersection(*(set(spec) for spec in specs))
    stereo = any(schema.STEREO in spec for spec in specs)
    for key in sorted(keys):
        shapes = [spec[key].shape for spec in specs]
        if any(not s.is_compatible_with(shapes[0]) for s in shapes):
            raise ValueError(f"MixedSource: '{key}' has shapes {[s.as_list() for s in shapes]} in the sources; "
                             "give train_stage.crop_size (and the same num_frames) so that samples match")

    def cut(sample):
        out = {k: sample[k] for k in keys}
        if stereo:
            out[schema.STEREO] = sample.get(schema.STEREO, tf.constant(False))
        return out

    return [ds.map(cut) for ds in parts]

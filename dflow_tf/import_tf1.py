"""Imports the released DDFlow / SelFlow TensorFlow 1 checkpoints into the Keras flow models.

    python -m dflow_tf.import_tf1 --checkpoint PATH/model --arch ddflow|selflow --out DIR

reads the TF1 checkpoint (prefix PATH/model: model.index + model.data-*), maps its variables onto
TwoFramePWC (ddflow) or ThreeFramePWC (selflow) as dflow_tf.tf1_checkpoints describes, and writes

    DIR/ckpt.index, DIR/ckpt.data-*   a tf.train.Checkpoint(model=...) of the Keras model
    DIR/model.json                    {"arch", "class", "config", "source"}

(dflow_tf.checkpoints.save_imported). A checkpoint that does not match the model ends with one
`error:` message naming the offending variables. `dflow_tf.checkpoints.load_model(DIR)` rebuilds
the model from DIR. See docs/models.md for what parity with the TF1 graph to expect.
"""
import argparse
import sys

from dflow_tf.native_logs import add_verbose_argument, hide_native_logs

if __name__ == "__main__":
    hide_native_logs()  # before TensorFlow loads: its native log lines off the console

from dflow_tf.checkpoints import save_imported
from dflow_tf.console import check_output_path, exit_on_input_error
from dflow_tf.models.registry import TF1_NAMES
from dflow_tf.tf1_checkpoints import import_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dflow_tf.import_tf1", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="TF1 checkpoint prefix, e.g. models/KITTI/census_occlusion")
    parser.add_argument("--arch", required=True, choices=sorted(TF1_NAMES))
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--normalize_input", action="store_true",
                        help="the model normalises each input image per channel (SelFlow's Sintel "
                             "fine-tuned release); recorded in the config")
    add_verbose_argument(parser)
    return _import_command(parser.parse_args(argv))


@exit_on_input_error
def _import_command(args):
    check_output_path(args.out)
    model = import_checkpoint(args.checkpoint, args.arch, args.normalize_input)
    prefix = save_imported(model, args.arch, args.out, source=args.checkpoint)
    print(f"imported {len(model.weights)} variables ({model.count_params():,} parameters) "
          f"from {args.checkpoint} -> {prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

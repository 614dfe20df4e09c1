"""Shared pieces of the command-line tools (train, evaluate, predict, submission, precompute): data
arguments, checks of the input before any work, the one-line error exit, progress lines with a
time estimate."""
import functools
import numbers
import os
import sys
import tempfile
import time


class InputError(ValueError):
    """Bad input (an argument, a gin binding, a dataset name), named in the message with what is
    allowed: the commands end with this one line instead of a traceback."""


def format_duration(seconds):
    """'mm:ss', or 'h:mm:ss' from an hour on."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def add_data_arguments(parser):
    """Adds --data_dir and --manual_dir, where the tfds_builders datasets live."""
    parser.add_argument("--data_dir", help="tfds data directory (default: TFDS_DATA_DIR or ~/tensorflow_datasets)")
    parser.add_argument("--manual_dir", help="manual download directory of KITTI / Sintel / FlyingChairs "
                                             "(default <data_dir>/downloads/manual)")


def add_model_arguments(parser):
    """Adds --checkpoint, --arch and --model_param, the model options shared by the command lines
    (read by `load_model_from_args`)."""
    from dflow_tf.models.registry import architecture_names
    parser.add_argument("--checkpoint", required=True,
                        help="training stage folder, checkpoint prefix, import_tf1 folder, "
                             "or 'zero' (zero-flow baseline)")
    parser.add_argument("--arch", choices=architecture_names(),
                        help="model architecture when no model.json is found next to the checkpoint")
    parser.add_argument("--model_param", action="append", default=[], metavar="NAME=VALUE",
                        help="model option, e.g. normalize_input=True (repeatable)")


def load_model_from_args(args):
    """dflow_tf.checkpoints.load_model(args.checkpoint, args.arch, args.model_param) -> (model,
    description)."""
    from dflow_tf.checkpoints import load_model, parse_model_params
    return load_model(args.checkpoint, args.arch, parse_model_params(args.model_param))


def check_output_path(path, argument="--out", folder=True):
    """Checks, before any work and without creating anything, that the output folder `path`
    (folder=True) or the output file `path` can be written: a probe file is created and removed
    in its nearest existing folder. InputError (a ValueError) naming `argument` otherwise."""
    target = os.path.abspath(path)
    existing = target if folder else os.path.dirname(target)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    try:
        if not os.path.isdir(existing):
            raise NotADirectoryError(20, "Not a directory", existing)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise InputError(f"{argument} {path}: cannot write in {existing} ({error.strerror or error})") from None
    return path


def check_crop_size(crop_size, multiple, binding="train_stage.crop_size"):
    """Checks a training crop against the model's size multiple, before any work: None (the stored
    size) or (height, width), two positive multiples of `multiple`. Returns crop_size; InputError
    naming `binding`, the value and the nearest allowed crop otherwise."""
    if crop_size is None:
        return None
    if (not isinstance(crop_size, (tuple, list)) or len(crop_size) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in crop_size)):
        raise InputError(f"{binding}={crop_size!r}: give (height, width), two multiples of {multiple}, "
                         "or None for the stored size")
    if any(v < 1 or v % multiple for v in crop_size):
        nearest = tuple(max(multiple, round(v / multiple) * multiple) for v in crop_size)
        raise InputError(f"{binding}={tuple(crop_size)!r}: height and width must be multiples of {multiple} "
                         f"(the model's size multiple), e.g. {nearest}; None keeps the stored size")
    return crop_size


def exit_on_input_error(command):
    """Wraps a command body `command(args) -> exit status`: an OSError (e.g. FileNotFoundError) or
    ValueError (a bad file, shape or argument, named in the message) ends with one `error: ...`
    line on stderr and status 1 instead of a traceback."""
    @functools.wraps(command)
    def run(args):
        try:
            return command(args)
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return run


class CountProgress:
    """Reports `done / total` items, the rate and the time left, at most every `every_s` seconds.

    On a terminal the line is rewritten in place; otherwise (logs, pipes) one line per report.
    total may be None (unknown): then no time left is shown.
    """

    def __init__(self, name, total=None, unit="images", every_s=2.0, stream=None, quiet=False):
        self.name, self.total, self.unit = name, total, unit
        self.every_s, self.stream, self.quiet = every_s, stream or sys.stderr, quiet
        self.start = self.last = time.perf_counter()
        self.done = 0
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, done=None):
        self.done = self.done + 1 if done is None else done
        now = time.perf_counter()
        if self.quiet or (now - self.last < self.every_s and self.done != self.total):
            return
        self.last = now
        elapsed = now - self.start
        rate = self.done / max(elapsed, 1e-9)
        of = f"/{self.total}" if self.total else ""
        left = ""
        if self.total:
            left = f", left {format_duration((self.total - self.done) / max(rate, 1e-9))}"
        line = f"[{self.name}] {self.done}{of} {self.unit}, {rate:.2f}/s, elapsed {format_duration(elapsed)}{left}"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self):
        if not self.quiet and self.tty:
            self.stream.write("\n")
            self.stream.flush()

"""The one exception type of dflow_tf.export: a user-facing problem (the CLI prints it and exits 1)."""


class ExportError(RuntimeError):
    """An export cannot be done as asked; the message says why and what to do instead."""

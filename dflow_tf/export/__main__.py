"""`python -m dflow_tf.export ...`: see dflow_tf.export.cli."""
from dflow_tf.export.cli import run

run()

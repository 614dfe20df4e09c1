"""Console-script entry points (dflow-train, dflow-evaluate, ...): each hides TensorFlow's native
log lines (dflow_tf.native_logs) before its command's module, and so TensorFlow, is imported,
then runs the command. `python -m dflow_tf.<command>` does the same at the top of the module."""
import importlib

from dflow_tf.native_logs import hide_native_logs


def _run(module):
    hide_native_logs()
    importlib.import_module(module).run()


def train():
    _run("dflow_tf.train")


def evaluate():
    _run("dflow_tf.evaluate")


def predict():
    _run("dflow_tf.predict")


def submission():
    _run("dflow_tf.submission")


def export():
    _run("dflow_tf.export.cli")

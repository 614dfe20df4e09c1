"""Installs dflow_tf (DistillFlow in TensorFlow 2 / Keras 3) and its TFDS builders."""
from setuptools import find_packages, setup

RUNTIME = [
    "tensorflow==2.21.*",
    "tensorflow-datasets>=4.9.9",
    "gin-config>=0.5.0",
    "absl-py>=2.1",
    "numpy>=1.26",
    "opencv-python-headless>=4.9",
    "scikit-image>=0.24",
    "matplotlib>=3.8",
    "tensorboard>=2.20",
    "importlib_resources>=6",
]

EXTRAS = {
    "test": ["pytest>=8", "pytest-xdist>=3.5", "scipy>=1.11", "dill>=0.3", "ruff==0.17.*"],
    "export": ["tf2onnx>=1.16", "onnxruntime>=1.18", "onnx>=1.16", "ai-edge-litert>=1.2"],
}

setup(
    name="dflow_tf",
    version="0.1.0",
    description="DistillFlow: self-supervised optical flow by distillation, in TensorFlow 2 / Keras 3",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["dflow_tf", "dflow_tf.*", "tfds_builders", "tfds_builders.*"]),
    package_data={"tfds_builders": ["*/dummy_data/**/*", "*/*.txt", "*/*.tsv"],
                  "dflow_tf": ["py.typed", "data/splits/*.txt", "pretrained/*/*"]},
    include_package_data=True,
    install_requires=RUNTIME,
    extras_require=EXTRAS,
    entry_points={"console_scripts": [
        "dflow-train=dflow_tf.commands:train",
        "dflow-evaluate=dflow_tf.commands:evaluate",
        "dflow-predict=dflow_tf.commands:predict",
        "dflow-submission=dflow_tf.commands:submission",
        "dflow-export=dflow_tf.commands:export",
    ]},
)

"""TFDS builders of dflow_tf; importing this package registers them with tensorflow_datasets.

  kitti_flow     KITTI 2012 / 2015 flow pairs and multi-view windows (manual download)
  sintel         MPI-Sintel clean / final windows (manual download)
  flying_chairs  FlyingChairs, official train / validation split (manual download)
  synthetic_flow layered affine scenes with exact ground truth, generated locally (default)
  kitti_stereo   KITTI 2012 / 2015 stereo pairs with disparity, multi-view stereo video (manual download)
  synthetic_stereo rectified stereo pairs of the synthetic scenes, exact disparity, generated locally

All share the example schema of `dflow_tf.data.schema` (docs/datasets.md).
"""
from tfds_builders.flying_chairs.flying_chairs import FlyingChairs
from tfds_builders.kitti_flow.kitti_flow import KittiFlow
from tfds_builders.kitti_stereo.kitti_stereo import KittiStereo
from tfds_builders.sintel.sintel import Sintel
from tfds_builders.synthetic_flow.synthetic_flow import SyntheticFlow
from tfds_builders.synthetic_stereo.synthetic_stereo import SyntheticStereo

__all__ = ["FlyingChairs", "KittiFlow", "KittiStereo", "Sintel", "SyntheticFlow", "SyntheticStereo"]

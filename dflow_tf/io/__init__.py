"""File formats (.flo, KITTI 16-bit PNG flow, PFM, images, masks) and flow pictures.

Layouts of several files: `dflow_tf.io.pair_folders` (frame pairs with ground truth, the
`--pairs` of evaluate) and `dflow_tf.io.sequences` (frame sequences in, flow files out: predict).
"""
from dflow_tf.io.flow_files import (
    FlowFileError,
    read_flo,
    read_image,
    read_kitti_flow,
    read_mask,
    read_pfm,
    write_flo,
    write_image,
    write_kitti_flow,
    write_pfm,
)
from dflow_tf.io.visualize import error_map, flow_to_color, make_colorwheel, write_flow_png

__all__ = [
    "FlowFileError",
    "read_flo", "write_flo",
    "read_kitti_flow", "write_kitti_flow",
    "read_pfm", "write_pfm",
    "read_image", "write_image", "read_mask",
    "flow_to_color", "error_map", "write_flow_png", "make_colorwheel",
]

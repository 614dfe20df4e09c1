"""'SAME' 2-D convolution in exact formulations, and the choice of the fastest correct one.

The flow networks need one convolution: NHWC input, HWIO kernel, TF "SAME" padding, optional
stride (pyramid) or dilation (context network). TensorFlow's CPU kernels differ in what they
offer for it (measured with TF 2.21, `bench/model.py --components`):

- Eigen (TensorFlow's own CPU kernels; what a CPU gets without oneDNN, i.e. every CPU without
  AVX-512-class features unless TF_ENABLE_ONEDNN_OPTS=1): dilated convolutions run forward but
  have no input gradient ("Current CPU implementations do not yet support dilation rates larger
  than 1").
- oneDNN: has the gradients for float32 and bfloat16, but float16 falls back to Eigen on CPUs
  without AVX-512 FP16 support. Below AVX-512 (an AVX2 CPU, or ONEDNN_MAX_CPU_ISA=AVX2) oneDNN
  has no float16 convolution primitive at all and aborts the op (measured with TF 2.21): there
  `conv2d_same` convolves in float32 and casts the result back (`cpu_runs_conv`). On AVX2 CPUs
  oneDNN runs a batch of one through an im2col + GEMM kernel that is 3x slower than its direct
  "brgemm" kernel, which it uses from a batch of two on.
- GPUs and XLA have native dilated convolutions with gradients.

Formulations (all compute the same function, tested against a numpy loop):
- "native": tf.nn.conv2d with `dilations`.
- "space_to_batch": a dilation-d convolution is an undilated one on the d x d interleaved
  sub-images (tf.space_to_batch with zero padding up to a multiple of d, the same zeros as SAME
  padding), put back with tf.batch_to_space. Its gradient exists on every backend, and it turns
  a batch of one into a batch of d^2.
- "row_strips": a stride-1 convolution of a batch of one as a batch of two half-height strips
  that overlap by the kernel's reach (explicit zero rows above and below, SAME padding across),
  reassembled by a reshape: oneDNN's fast kernel for what would be its slow case.

`conv2d_same` picks per call, from the device, the dtype and the static shape
(`choose_formulation`); DFLOW_CONV_FORMULATION=native|space_to_batch|row_strips forces one where it
applies (for benchmarks and tests). The kernel layout is the plain HWIO one, so checkpoints,
the TF1 importer and exports do not depend on the formulation.
"""
import contextlib
import functools
import os
import platform
import threading

import tensorflow as tf

FORMULATIONS = ("native", "space_to_batch", "row_strips")
FORCE_VARIABLE = "DFLOW_CONV_FORMULATION"
_portable = threading.local()


@contextlib.contextmanager
def portable_ops():
    """Within this context conv2d_same (and the models' LeakyReLU) trace the plain TensorFlow ops:
    native (dilated) convolutions and stock gradients, whatever this machine's backend. That is
    the graph an export holds: inference only, so every backend runs its forward pass, and
    TFLite, ONNX and TF Serving on any device see the operators they know best."""
    previous = getattr(_portable, "active", False)
    _portable.active = True
    try:
        yield
    finally:
        _portable.active = previous


def portable_ops_active():
    """True inside `portable_ops()`."""
    return getattr(_portable, "active", False)


@functools.cache
def cpu_has_native_dilated_gradient(dtype_name):
    """Whether this process's CPU kernels compute the input gradient of a dilated convolution in
    `dtype_name` (True where oneDNN serves the dtype; False with Eigen). Probed once per dtype
    with a tiny Conv2DBackpropInput on the CPU, outside any graph being traced."""
    with tf.init_scope(), tf.device("/CPU:0"):
        dtype = tf.as_dtype(dtype_name)
        try:
            tf.raw_ops.Conv2DBackpropInput(
                input_sizes=[1, 4, 4, 1], filter=tf.zeros([3, 3, 1, 1], dtype),
                out_backprop=tf.zeros([1, 4, 4, 1], dtype), strides=[1, 1, 1, 1], padding="SAME",
                dilations=[1, 2, 2, 1])
            return True
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                tf.errors.NotFoundError, tf.errors.AbortedError):
            # AbortedError: oneDNN has the kernel but no primitive for this dtype on this ISA
            # (float16 under ONEDNN_MAX_CPU_ISA=AVX2, or on a CPU without AVX512-FP16).
            return False


@functools.cache
def cpu_runs_conv(dtype_name):
    """Whether this process's CPU kernels run a 'SAME' convolution in `dtype_name` (False where
    oneDNN registers the dtype but has no primitive for it on this ISA). Probed once per dtype,
    outside any graph being traced."""
    with tf.init_scope(), tf.device("/CPU:0"):
        dtype = tf.as_dtype(dtype_name)
        try:
            tf.nn.conv2d(tf.zeros([1, 4, 4, 1], dtype), tf.zeros([3, 3, 1, 1], dtype), 1, "SAME")
            return True
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                tf.errors.NotFoundError, tf.errors.AbortedError):
            return False


AVX512_FLAGS = {"avx512f", "avx512bw", "avx512vl", "avx512dq"}


@functools.cache
def onednn_below_avx512():
    """Whether oneDNN runs its x86 kernels below AVX-512 (an AVX2 CPU, or ONEDNN_MAX_CPU_ISA capped
    below AVX512_CORE): there a batch of one goes through a slow im2col + GEMM convolution and the
    kernel gradient through a slow convolution. Read from the CPU flags (/proc/cpuinfo; assumed
    true on an x86 machine where they cannot be read)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if not cap.startswith(("ALL", "DEFAULT", "AVX512", "AVX10", "AMX")):
        return True
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo
                          if line.startswith("flags")), None)
    except OSError:
        flags = None
    return flags is None or not AVX512_FLAGS <= set(flags)


@functools.cache
def _gpu_visible():
    return bool(tf.config.list_logical_devices("GPU"))


def _on_gpu(x):
    """True when `x` is (or, traced without a device, will be) on a GPU: a GPU is visible and `x`
    is not placed on the CPU."""
    return _gpu_visible() and "CPU" not in (getattr(x, "device", "") or "").upper()


def choose_formulation(x, dilation, stride=1, out_channels=None):
    """(formulation, kernel_gradient) that `conv2d_same` uses for `x` [B, H, W, C_in] and a
    kernel of `out_channels` outputs.

    Rules (static shapes where known):
    - GPU, or inside `portable_ops()`: native.
    - CPU, a dilated convolution in a dtype without native gradient (Eigen): space_to_batch.
    - CPU, oneDNN kernels below AVX-512, a static batch of one: space_to_batch for dilated and
      row_strips for undilated stride-1 convolutions of even static height >= 8, so that oneDNN
      runs a batch of at least two (its fast kernel).
    - Otherwise native.
    kernel_gradient is "matmul" (`_conv_with_matmul_kernel_gradient`) for oneDNN below AVX-512
    and convolutions of at least 32 input and output channels (where it measured 1.5-1.8x faster
    than oneDNN's kernel-gradient convolution), else "native".
    DFLOW_CONV_FORMULATION forces the formulation wherever it applies.
    """
    if dilation > 1 and stride > 1:
        raise ValueError(f"conv2d_same: stride {stride} with dilation {dilation} (TF allows one)")
    if portable_ops_active() or _on_gpu(x):
        return "native", "native"
    onednn = cpu_has_native_dilated_gradient(x.dtype.base_dtype.name)
    below_avx512 = onednn and onednn_below_avx512()
    forced = os.environ.get(FORCE_VARIABLE)
    if forced:
        if forced not in FORMULATIONS:
            raise ValueError(f"{FORCE_VARIABLE}={forced!r}: must be one of {FORMULATIONS}")
        applies = {"native": onednn or dilation == 1, "space_to_batch": dilation > 1,
                   "row_strips": _row_strips_apply(x, stride, dilation)}[forced]
        formulation = forced if applies else ("native" if dilation == 1 else "space_to_batch")
    elif dilation > 1:
        slow = below_avx512 and x.shape[0] == 1
        formulation = "space_to_batch" if (not onednn or slow) else "native"
    elif below_avx512 and _row_strips_apply(x, stride, dilation):
        formulation = "row_strips"
    else:
        formulation = "native"
    wide = x.shape[-1] is not None and x.shape[-1] >= 32 and (out_channels or 0) >= 32
    return formulation, ("matmul" if below_avx512 and wide else "native")


def _row_strips_apply(x, stride, dilation):
    height = x.shape[1]
    return (stride == 1 and dilation == 1 and x.shape[0] == 1 and height is not None
            and height % 2 == 0 and height >= 8)


def _cpu_lacks_conv(x):
    """Whether x's convolution runs on this CPU's kernels, which have none for x's dtype
    (`cpu_runs_conv`): such convolutions are computed in float32 and cast back."""
    return not (portable_ops_active() or _on_gpu(x)) and not cpu_runs_conv(x.dtype.base_dtype.name)


def conv2d_valid(x, kernel, stride=1):
    """tf.nn.conv2d(x, kernel, stride, "VALID"), in float32 and cast back where this CPU has no
    convolution for x's dtype (float16 or bfloat16 under oneDNN below AVX-512).

    Args:
      x: float [B, H, W, C_in]; kernel: [kh, kw, C_in, C_out] (HWIO); stride: int.

    Returns:
      [B, (H - kh) // stride + 1, (W - kw) // stride + 1, C_out].
    """
    if _cpu_lacks_conv(x):
        return tf.cast(tf.nn.conv2d(tf.cast(x, tf.float32), tf.cast(kernel, tf.float32), stride, "VALID"),
                       x.dtype)
    return tf.nn.conv2d(x, kernel, stride, "VALID")


def conv2d_same(x, kernel, stride=1, dilation=1, formulation=None, kernel_gradient=None):
    """'SAME' convolution, identical to tf.nn.conv2d(x, kernel, stride, "SAME", dilations=dilation).

    Args:
      x: float [B, H, W, C_in].
      kernel: [kh, kw, C_in, C_out] (HWIO), odd kh and kw unless the formulation is native.
      stride, dilation: ints (not both > 1).
      formulation: one of FORMULATIONS, or None to let `choose_formulation` decide.
      kernel_gradient: "native" or "matmul", or None to let `choose_formulation` decide.

    Returns:
      [B, ceil(H / stride), ceil(W / stride), C_out].
    """
    stride, dilation = int(stride), int(dilation)
    if _cpu_lacks_conv(x):
        y = conv2d_same(tf.cast(x, tf.float32), tf.cast(kernel, tf.float32), stride, dilation,
                        formulation, kernel_gradient)
        return tf.cast(y, x.dtype)
    if formulation is None or kernel_gradient is None:
        chosen = choose_formulation(x, dilation, stride, kernel.shape[3])
        formulation = formulation or chosen[0]
        kernel_gradient = kernel_gradient or chosen[1]
    if kernel_gradient not in ("native", "matmul"):
        raise ValueError(f"conv2d_same: kernel_gradient must be 'native' or 'matmul', got "
                         f"{kernel_gradient!r}")
    kh, kw = kernel.shape[0], kernel.shape[1]
    if formulation != "native" and (kh % 2 == 0 or kw % 2 == 0):
        raise ValueError(f"conv2d_same: formulation {formulation!r} needs an odd kernel, got "
                         f"{kh}x{kw}")

    def conv(inputs, padding, rate):
        if kernel_gradient == "matmul":
            return _conv_with_matmul_kernel_gradient(inputs, kernel, stride, padding, rate)
        return tf.nn.conv2d(inputs, kernel, stride,
                            padding if padding == "SAME" else [[0, 0], *padding, [0, 0]],
                            dilations=rate)

    if formulation == "native":
        return conv(x, "SAME", dilation)
    if formulation == "space_to_batch":
        if dilation == 1:
            raise ValueError("conv2d_same: space_to_batch is for dilation > 1")
        # Dilated SAME conv = undilated SAME conv of the dilation x dilation sub-images; the
        # zeros that pad H and W up to a multiple of the dilation are the SAME padding's zeros.
        shape = tf.shape(x)
        paddings = [[0, (-shape[1]) % dilation], [0, (-shape[2]) % dilation]]
        blocks = tf.space_to_batch(x, [dilation, dilation], paddings)
        return tf.batch_to_space(conv(blocks, "SAME", 1), [dilation, dilation], paddings)
    if formulation == "row_strips":
        if not _row_strips_apply(x, stride, dilation):
            raise ValueError(f"conv2d_same: row_strips needs stride 1, no dilation and a static "
                             f"batch of 1 with an even height >= 8, got stride {stride}, dilation "
                             f"{dilation}, shape {x.shape}")
        # [1, H, W, C] -> two strips [2, H/2 + 2r, W, C] that overlap by the kernel's reach r
        # (zero rows above and below, as SAME pads), VALID along H and SAME along W; the two
        # [H/2] outputs are consecutive rows, so a reshape reassembles them.
        half, reach_h, reach_w = x.shape[1] // 2, kh // 2, kw // 2
        padded = tf.pad(x, [[0, 0], [reach_h, reach_h], [0, 0], [0, 0]])
        strips = tf.concat([padded[:, :half + 2 * reach_h], padded[:, half:]], axis=0)
        y = conv(strips, [[0, 0], [reach_w, reach_w]], 1)
        return tf.reshape(y, [1, x.shape[1], tf.shape(x)[2], kernel.shape[3]])
    raise ValueError(f"conv2d_same: formulation must be one of {FORMULATIONS}, got {formulation!r}")


def _same_padding(size, kernel, stride, dilation):
    """(before, after) zero padding of TF 'SAME' along an axis of `size` (int or int32 tensor)."""
    total = ((size + stride - 1) // stride - 1) * stride + (kernel - 1) * dilation + 1 - size
    total = max(total, 0) if isinstance(total, int) else tf.maximum(total, 0)
    return total // 2, total - total // 2


def _conv_with_matmul_kernel_gradient(x, kernel, stride, padding, dilation):
    """tf.nn.conv2d(x, kernel, stride, padding, dilations=dilation) whose kernel gradient is the sum
    over the kh * kw taps of (x shifted by the tap)^T @ dy, matrix products, instead of
    Conv2DBackpropFilter (3-4x slower than the forward pass in oneDNN below AVX-512).

    padding: "SAME", or [[top, bottom], [left, right]] explicit zero padding (static ints).
    """
    kh, kw, c_in, c_out = kernel.shape

    @tf.custom_gradient
    def conv(x, kernel):
        if padding == "SAME":
            static, dynamic = x.shape, tf.shape(x)
            pads = [_same_padding(static[1] if static[1] is not None else dynamic[1], kh, stride,
                                  dilation),
                    _same_padding(static[2] if static[2] is not None else dynamic[2], kw, stride,
                                  dilation)]
            tf_padding = "SAME"
        else:
            pads, tf_padding = padding, [[0, 0], *padding, [0, 0]]
        y = tf.nn.conv2d(x, kernel, stride, tf_padding, dilations=dilation)

        def grad(dy):
            dx = tf.nn.conv2d_transpose(dy, kernel, tf.shape(x), stride, tf_padding,
                                        dilations=dilation)
            padded = tf.pad(x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]])
            out_h, out_w = tf.shape(dy)[1], tf.shape(dy)[2]
            dy_flat = tf.reshape(dy, [-1, c_out])
            taps = []
            for i in range(kh):
                for j in range(kw):
                    shifted = padded[:, i * dilation:i * dilation + (out_h - 1) * stride + 1:stride,
                                     j * dilation:j * dilation + (out_w - 1) * stride + 1:stride]
                    taps.append(tf.matmul(tf.reshape(shifted, [-1, c_in]), dy_flat, transpose_a=True))
            return dx, tf.reshape(tf.stack(taps), [kh, kw, c_in, c_out])

        return y, grad

    # A variable is read here, outside the custom gradient (which, eagerly, must not see one).
    return conv(x, tf.convert_to_tensor(kernel))

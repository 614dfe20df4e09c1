"""The convolution formulations (dflow_tf.ops.conv) against a numpy loop, with their gradients,
and the choice between them on this machine's backend (oneDNN or Eigen)."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from dflow_tf.models.layers import leaky_relu
from dflow_tf.ops import conv

# Run again by CI with oneDNN off and with its AVX2 kernels (pytest.ini).
pytestmark = pytest.mark.backend


def numpy_conv_same(x, kernel, stride, dilation):
    """TF 'SAME' convolution by a plain loop: x [B, H, W, C], kernel HWIO."""
    b, h, w, _ = x.shape
    kh, kw, _, c_out = kernel.shape
    out_h, out_w = -(-h // stride), -(-w // stride)
    pad_h = max((out_h - 1) * stride + (kh - 1) * dilation + 1 - h, 0)
    pad_w = max((out_w - 1) * stride + (kw - 1) * dilation + 1 - w, 0)
    top, left = pad_h // 2, pad_w // 2
    out = np.zeros((b, out_h, out_w, c_out))
    for i in range(out_h):
        for j in range(out_w):
            for a in range(kh):
                for c in range(kw):
                    y = i * stride - top + a * dilation
                    x_ = j * stride - left + c * dilation
                    if 0 <= y < h and 0 <= x_ < w:
                        out[:, i, j] += x[:, y, x_] @ kernel[a, c]
    return out


CASES = [  # (batch, height, width, c_in, c_out, stride, dilation)
    (1, 14, 10, 3, 4, 1, 2),    # H, W not multiples of the dilation
    (1, 16, 16, 5, 3, 1, 4),
    (2, 9, 7, 2, 2, 1, 3),
    (1, 16, 12, 5, 3, 1, 1),    # row strips apply
    (1, 10, 6, 2, 3, 2, 1),     # stride 2 (the pyramid)
    (2, 15, 9, 4, 4, 2, 1),
]


def _applies(formulation, batch, height, stride, dilation):
    if formulation == "space_to_batch":
        return dilation > 1
    if formulation == "row_strips":
        return stride == 1 and dilation == 1 and batch == 1 and height % 2 == 0 and height >= 8
    return True


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_every_formulation_and_kernel_gradient_matches_a_numpy_convolution(case):
    b, h, w, c_in, c_out, stride, dilation = case
    rng = np.random.default_rng(sum(case))
    x = rng.normal(size=(b, h, w, c_in))
    kernel = rng.normal(size=(3, 3, c_in, c_out))
    expected = numpy_conv_same(x, kernel, stride, dilation)
    # Gradients of sum(y * g) are dL/dx = conv-transpose(g), dL/dk = correlation(x, g); check them
    # against numeric derivatives of the numpy convolution along random directions.
    g = rng.normal(size=expected.shape)
    xt, kt = tf.constant(x, tf.float32), tf.constant(kernel, tf.float32)
    for formulation, kernel_gradient in itertools.product(conv.FORMULATIONS, ("native", "matmul")):
        if not _applies(formulation, b, h, stride, dilation):
            continue
        if dilation > 1 and formulation == "native" and not conv.cpu_has_native_dilated_gradient("float32"):
            want_gradient = False  # Eigen: the forward pass exists, its input gradient does not
        else:
            want_gradient = True
        with tf.GradientTape() as tape:
            tape.watch([xt, kt])
            y = conv.conv2d_same(xt, kt, stride, dilation, formulation, kernel_gradient)
            loss = tf.reduce_sum(y * tf.constant(g, tf.float32))
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-4,
                                   err_msg=f"{formulation}/{kernel_gradient}")
        if not want_gradient:
            continue
        dx, dk = tape.gradient(loss, [xt, kt])
        for name, value, grad in (("x", x, dx), ("kernel", kernel, dk)):
            direction = rng.normal(size=value.shape)
            eps = 1e-3
            plus = {"x": x, "kernel": kernel}
            minus = dict(plus)
            plus[name] = value + eps * direction
            minus[name] = value - eps * direction
            numeric = (np.sum(numpy_conv_same(plus["x"], plus["kernel"], stride, dilation) * g)
                       - np.sum(numpy_conv_same(minus["x"], minus["kernel"], stride, dilation) * g)) / (2 * eps)
            analytic = float(np.sum(grad.numpy() * direction))
            assert analytic == pytest.approx(numeric, rel=1e-3, abs=1e-3), f"{formulation}/{kernel_gradient} d{name}"


def numpy_gradients_of_sum(x, kernel, dilation):
    """d/dx and d/dkernel of sum(conv_same(x, kernel)) at stride 1, tap by tap: the output at
    (i, j) reads x at (i + a * dilation - top, j + c * dilation - left) through tap (a, c), so
    each tap's kernel gradient is the sum of the x pixels it reads, and each pixel read gets the
    tap's weights summed over the output channels."""
    _, h, w, _ = x.shape
    kh, kw, _, c_out = kernel.shape
    top, left = (kh - 1) * dilation // 2, (kw - 1) * dilation // 2
    dx, dk = np.zeros(x.shape), np.zeros(kernel.shape)
    for a in range(kh):
        for c in range(kw):
            dy, dx_ = a * dilation - top, c * dilation - left
            rows = slice(max(0, dy), min(h, h + dy))
            cols = slice(max(0, dx_), min(w, w + dx_))
            dk[a, c] = np.repeat(x[:, rows, cols].sum(axis=(0, 1, 2))[:, None], c_out, axis=1)
            dx[:, rows, cols] += kernel[a, c].sum(axis=1)
    return dx, dk


@pytest.mark.parametrize("backend", ["this", "eigen"])
def test_chosen_formulation_has_the_right_gradient_on_this_backend_and_under_eigen(backend, monkeypatch):
    """Whatever oneDNN / Eigen this process runs (and with the Eigen plan, space-to-batch for
    dilated convolutions, whatever it runs), the automatic choice computes the convolution and
    its input and kernel gradients (known answers of d sum(y): numpy_gradients_of_sum)."""
    if backend == "eigen":
        monkeypatch.setattr(conv, "cpu_has_native_dilated_gradient", lambda dtype: False)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1, 16, 16, 4))
    kernel = rng.normal(size=(3, 3, 4, 4))
    xt, kt = tf.constant(x, tf.float32), tf.constant(kernel, tf.float32)
    for dilation in (1, 2, 16):
        with tf.GradientTape() as tape:
            tape.watch([xt, kt])
            y = conv.conv2d_same(xt, kt, 1, dilation)
            loss = tf.reduce_sum(y)
        dx, dk = tape.gradient(loss, [xt, kt])
        expected_dx, expected_dk = numpy_gradients_of_sum(x, kernel, dilation)
        np.testing.assert_allclose(y.numpy(), numpy_conv_same(x, kernel, 1, dilation), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dx.numpy(), expected_dx, rtol=1e-4, atol=1e-4, err_msg=f"dx, dilation {dilation}")
        np.testing.assert_allclose(dk.numpy(), expected_dk, rtol=1e-4, atol=1e-3, err_msg=f"dk, dilation {dilation}")
    if backend == "eigen" or not conv.cpu_has_native_dilated_gradient("float32"):
        assert conv.choose_formulation(xt, 2, 1, 4)[0] == "space_to_batch"


def test_float16_dilated_convs_train_where_onednn_falls_back_to_eigen():
    """float16 gradients of a dilated convolution, against the known answers in float64 (to
    float16 precision: sums of up to 2 x 16 x 16 products)."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 16, 16, 4)).astype(np.float16)
    kernel = rng.normal(size=(3, 3, 4, 4)).astype(np.float16)
    xt, kt = tf.constant(x), tf.constant(kernel)
    with tf.GradientTape() as tape:
        tape.watch([xt, kt])
        loss = tf.reduce_sum(tf.cast(conv.conv2d_same(xt, kt, 1, 4), tf.float32))
    dx, dk = tape.gradient(loss, [xt, kt])
    assert dx.dtype == tf.float16 and dk.dtype == tf.float16
    expected_dx, expected_dk = numpy_gradients_of_sum(x.astype(np.float64), kernel.astype(np.float64), 4)
    np.testing.assert_allclose(dx.numpy(), expected_dx, rtol=1e-2, atol=1e-2 * np.abs(expected_dx).max())
    np.testing.assert_allclose(dk.numpy(), expected_dk, rtol=1e-2, atol=1e-2 * np.abs(expected_dk).max())


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_valid_convolution_in_every_dtype(dtype):
    """conv2d_valid (stride 2, 3x3) against a numpy loop; float16 and bfloat16 run on every backend
    (oneDNN below AVX-512 has no primitive for them: computed in float32 and cast back)."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 11, 9, 3))
    kernel = rng.normal(size=(3, 3, 3, 4))
    y = conv.conv2d_valid(tf.constant(x, dtype), tf.constant(kernel, dtype), 2)
    assert y.dtype == tf.as_dtype(dtype) and y.shape == (2, 5, 4, 4)
    quantised = [tf.cast(tf.constant(v, dtype), tf.float64).numpy() for v in (x, kernel)]
    # the VALID output pixel (i, j) is the SAME loop's pixel centred on input (2i + 1, 2j + 1)
    want = numpy_conv_same(*quantised, 1, 1)[:, 1:-1:2, 1:-1:2]
    tolerance = {"float32": 1e-5, "float16": 2e-2, "bfloat16": 1e-1}[dtype]
    np.testing.assert_allclose(tf.cast(y, tf.float64).numpy(), want, atol=tolerance * np.abs(want).max())


def test_below_avx512_rules(monkeypatch):
    """The oneDNN-below-AVX-512 plan (an AVX2 CPU), whatever CPU runs the test."""
    monkeypatch.setattr(conv, "cpu_has_native_dilated_gradient", lambda dtype: True)
    monkeypatch.setattr(conv, "onednn_below_avx512", lambda: True)
    one = tf.zeros([1, 112, 256, 128])
    two = tf.zeros([2, 112, 256, 128])
    assert conv.choose_formulation(one, 1, 1, 128) == ("row_strips", "matmul")
    assert conv.choose_formulation(one, 4, 1, 128) == ("space_to_batch", "matmul")
    assert conv.choose_formulation(two, 4, 1, 128) == ("native", "matmul")
    assert conv.choose_formulation(two, 1, 1, 16) == ("native", "native")  # narrow: oneDNN's own
    assert conv.choose_formulation(tf.zeros([1, 7, 16, 128]), 1, 1, 128)[0] == "native"  # odd height
    monkeypatch.setattr(conv, "onednn_below_avx512", lambda: False)
    assert conv.choose_formulation(one, 4, 1, 128) == ("native", "native")


def test_forced_formulation_and_bad_arguments(monkeypatch):
    x = tf.zeros([1, 16, 16, 4])
    monkeypatch.setenv(conv.FORCE_VARIABLE, "space_to_batch")
    assert conv.choose_formulation(x, 2, 1, 4)[0] == "space_to_batch"
    assert conv.choose_formulation(x, 1, 1, 4)[0] == "native"  # does not apply undilated
    monkeypatch.setenv(conv.FORCE_VARIABLE, "winograd")
    with pytest.raises(ValueError, match="DFLOW_CONV_FORMULATION"):
        conv.choose_formulation(x, 1, 1, 4)
    monkeypatch.delenv(conv.FORCE_VARIABLE)
    with pytest.raises(ValueError, match="stride 2 with dilation 2"):
        conv.conv2d_same(x, tf.zeros([3, 3, 4, 4]), 2, 2)
    with pytest.raises(ValueError, match="odd kernel"):
        conv.conv2d_same(x, tf.zeros([2, 2, 4, 4]), 1, 2, "space_to_batch")
    with pytest.raises(ValueError, match="row_strips needs"):
        conv.conv2d_same(tf.zeros([2, 16, 16, 4]), tf.zeros([3, 3, 4, 4]), 1, 1, "row_strips")


def test_leaky_relu_value_and_gradient_equal_tensorflows():
    x = tf.constant([-2.0, -0.5, 0.0, 0.5, 3.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = leaky_relu(x, 0.2)
        stock = tf.nn.leaky_relu(x, 0.2)
    np.testing.assert_array_equal(ours.numpy(), stock.numpy())
    np.testing.assert_array_equal(tape.gradient(ours, x).numpy(), tape.gradient(stock, x).numpy())


def test_portable_ops_trace_native_convolutions_and_the_stock_leaky_relu(monkeypatch):
    """What an export traces does not depend on the backend that traced it."""
    monkeypatch.setattr(conv, "cpu_has_native_dilated_gradient", lambda dtype: False)  # as Eigen
    x = tf.zeros([1, 16, 16, 64])
    assert conv.choose_formulation(x, 4, 1, 64)[0] == "space_to_batch"
    with conv.portable_ops():
        assert conv.choose_formulation(x, 4, 1, 64) == ("native", "native")
        graph = tf.function(lambda t: leaky_relu(conv.conv2d_same(t, tf.zeros([3, 3, 64, 8]), 1, 4), 0.2))
        ops = {op.type for op in graph.get_concrete_function(x).graph.get_operations()}
    assert conv.portable_ops_active() is False
    assert "SpaceToBatchND" not in ops and "IdentityN" not in ops and "LeakyRelu" in ops


def test_matmul_kernel_gradient_reaches_layer_variables_eagerly_and_in_graphs(monkeypatch):
    """The below-AVX-512 plan with a Keras layer's kernel variable (eager and tf.function)."""
    from dflow_tf.models.layers import Conv
    monkeypatch.setattr(conv, "cpu_has_native_dilated_gradient", lambda dtype: True)
    monkeypatch.setattr(conv, "onednn_below_avx512", lambda: True)
    layer = Conv(32, dilation_rate=2)
    x = tf.random.normal([1, 16, 16, 32])
    layer(x)

    def gradient():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(layer(x)))
        return tape.gradient(loss, layer.kernel)

    eager, graph = gradient(), tf.function(gradient)()
    # Reference: the Eigen plan (space-to-batch, TensorFlow's kernel gradient), valid on every CPU.
    monkeypatch.setattr(conv, "cpu_has_native_dilated_gradient", lambda dtype: False)
    reference = gradient()
    np.testing.assert_allclose(eager.numpy(), reference.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(graph.numpy(), reference.numpy(), rtol=1e-4, atol=1e-3)

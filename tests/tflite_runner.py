"""Runs an exported TFLite flow model in the LiteRT interpreter, as the export tests do."""


def run_tflite(path, pair):
    """Flow of the first pair of `pair` ([frame1, frame2], uint8 [B, H, W, 3]) by the TFLite file
    at `path`, through its serving_default signature; asserts that no Flex (TF fallback) op is in
    the file."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=path)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(op.startswith("Flex") for op in ops), ops
    runner = interpreter.get_signature_runner("serving_default")
    return runner(frame1=pair[0][:1], frame2=pair[1][:1])["flow"]

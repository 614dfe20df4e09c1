"""Console progress lines: interval means of the scalars, running totals as they are."""
import io
import re

from dflow_tf.training.progress import Progress


def test_progress_lines_show_interval_means_and_totals():
    stream = io.StringIO()
    progress = Progress("stage", first_step=0, last_step=5, every=2, stream=stream)
    for step, (loss, rejected) in enumerate([(4.0, 1.0), (2.0, 0.0), (1.0, 0.5), (3.0, 0.5), (7.0, 0.0)], 1):
        progress.step(step, {"loss": loss, "occlusion_rejected": rejected}, 1e-4, totals={"skipped": step})
    lines = stream.getvalue().splitlines()
    assert [re.search(r"step (\d+)/5", line).group(1) for line in lines] == ["2", "4", "5"]
    assert "loss=3.0000 occlusion_rejected=0.5000 skipped=2.0000" in lines[0]
    assert "loss=2.0000 occlusion_rejected=0.5000 skipped=4.0000" in lines[1]
    assert "loss=7.0000 occlusion_rejected=0.0000 skipped=5.0000" in lines[2]

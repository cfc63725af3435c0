"""annotate.py's speed benchmark runs end to end on a tiny size (no figure is asserted;
bench/framing.py's test is in test_framing.py)."""
import pytest

from bench import annotate_speed
from ferkit.app import cli


@pytest.mark.slow
def test_speed_benchmark_compares_both_runtimes_in_one_run(capfd):
    """LiteRT and Keras, each in its own process, side by side in one table; the LiteRT
    process never imports TensorFlow (a progress bar that did cost it 24 ms a frame)."""
    code = cli.run(annotate_speed.main, ["--faces", "2", "--frames", "3", "--repeats", "1",
                                         "--detector", "haar", "--no-cascade"])
    out = capfd.readouterr().out
    assert code == 0
    assert out.count("with 2 faces: found 2;") == 2 and "faces/s" in out
    assert out.count("3 frames, one face (3 found): ") == 2 and "--no-draw" in out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ")]
    assert [cells[0].strip() for cells in rows[2:]] == ["litert", "keras"]
    assert rows[2][-1].strip() == "no" and rows[3][-1].strip() == "yes"


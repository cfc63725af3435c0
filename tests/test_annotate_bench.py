"""annotate.py's benchmarks run end to end on tiny sizes (no figure is asserted)."""
import pytest

from conftest import FER2013
from bench import annotate_speed, framing
from ferkit import cli


def test_speed_benchmark_compares_both_runtimes_in_one_run(capfd):
    """LiteRT and Keras, each in its own process, side by side in one table; the LiteRT
    process never imports TensorFlow (a progress bar that did cost it 24 ms a frame)."""
    code = cli.run(annotate_speed.main, ["--faces", "2", "--frames", "3", "--repeats", "1",
                                         "--no-cascade"])
    out = capfd.readouterr().out
    assert code == 0
    assert out.count("with 2 faces: found 2;") == 2 and "faces/s" in out
    assert out.count("3 frames, one face (3 found): ") == 2 and "--no-draw" in out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ")]
    assert [cells[0].strip() for cells in rows[2:]] == ["litert", "keras"]
    assert rows[2][-1].strip() == "no" and rows[3][-1].strip() == "yes"


@pytest.mark.skipif(not (FER2013 / "test.csv.gz").exists(), reason="FER2013 not here")
def test_framing_benchmark_runs_on_a_tiny_size(capsys):
    code = cli.run(framing.main, ["--split", "test", "--limit", "8", "--margins", "0,0.1",
                                  "--no-cascade"])
    out = capsys.readouterr().out
    assert code == 0
    assert "test: 8 faces in 2 pictures" in out
    assert "| 0 |" in out and "| 0.1 |" in out

"""annotate.py's benchmarks run end to end on tiny sizes (no figure is asserted)."""
import pytest

from conftest import FER2013
from bench import annotate_speed, framing
from ferkit import cli


def test_speed_benchmark_runs_on_a_tiny_size(capsys):
    code = cli.run(annotate_speed.main, ["--faces", "2", "--frames", "3", "--repeats", "1",
                                         "--no-cascade"])
    out = capsys.readouterr().out
    assert code == 0
    assert "with 2 faces: found 2;" in out and "faces/s" in out
    assert "3 frames, one face (3 found): " in out and "--no-draw" in out and "frames/s" in out


@pytest.mark.skipif(not (FER2013 / "test.csv.gz").exists(), reason="FER2013 not here")
def test_framing_benchmark_runs_on_a_tiny_size(capsys):
    code = cli.run(framing.main, ["--split", "test", "--limit", "8", "--margins", "0,0.1",
                                  "--no-cascade"])
    out = capsys.readouterr().out
    assert code == 0
    assert "test: 8 faces in 2 pictures" in out
    assert "| 0 |" in out and "| 0.1 |" in out

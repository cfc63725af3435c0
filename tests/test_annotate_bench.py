"""annotate.py's speed benchmark runs end to end on a tiny size (no figure is asserted;
bench/framing.py's test is in test_framing.py)."""
from bench import annotate_speed
from ferkit import cli


def test_speed_benchmark_runs_on_a_tiny_size(capsys):
    code = cli.run(annotate_speed.main, ["--faces", "2", "--frames", "3", "--repeats", "1",
                                         "--no-cascade"])
    out = capsys.readouterr().out
    assert code == 0
    assert "with 2 faces: found 2;" in out and "faces/s" in out
    assert "3 frames, one face (3 found): " in out and "--no-draw" in out and "frames/s" in out

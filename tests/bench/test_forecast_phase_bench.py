"""The forecast-phase benchmark runs end to end on a tiny configuration (numbers: its main)."""

from benchmarks.forecast_phase import main


def test_forecast_phase_benchmark_runs(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--workloads", "6", "--ticks", "2", "--fits", "1", "--models", "1"]) == 0
    out = capsys.readouterr().out
    assert "auto / persistence per tick" in out

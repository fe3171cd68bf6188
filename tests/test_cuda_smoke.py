"""benchmarks/gpu_smoke.py works end to end but for CUDA itself: its dry run on the CPU,
its refusal without a GPU, and its GPU-busy sampling through nvidia-smi."""

import sys

import pytest

from .conftest import REPO, UTKFACE


@pytest.fixture
def smoke(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import gpu_smoke

    yield gpu_smoke
    for name in ("gpu_smoke", "_common"):
        sys.modules.pop(name, None)


@pytest.mark.filterwarnings("ignore:The '.*' specialist trains without a validation split")
def test_dry_run_runs_every_step(smoke, tmp_path, capsys):
    data = ["--data", str(UTKFACE)] if (UTKFACE / "labels.csv").exists() else ["--synthetic"]
    report = smoke.main(["--dry-run", "--n", "32", "--out", str(tmp_path / "smoke"), *data])
    assert report["failed"] == []
    assert set(report["results"]) == {
        "full_fine_tuning",
        "cached_feature_training",
        "predict_from_paths",
        "save_load_across_devices",
        "predict_ratio",
        "fusion_model",
        "mixed_precision",
        "train_ratio",
    }
    predict, train = report["results"]["predict_ratio"], report["results"]["train_ratio"]
    assert predict["predict_ratio"] == pytest.approx(
        predict["hand_seconds"] / predict["library_seconds"], rel=0.01
    )
    assert (
        train["train_ratio"] > 0 and train["images"] == 25
    )  # 80 % of 32, less validation? no: all
    # the hand-written loop computes what the library does (up to PIL's resizing)
    assert predict["max_abs_probability_difference"] < 0.05
    assert predict["gpu_busy_percent"] is None and "dry run" in predict["gpu_busy_source"]
    out = capsys.readouterr().out
    assert "CPU, dry run: the numbers mean nothing" in out and "FAILED" not in out
    assert (tmp_path / "smoke.json").stat().st_size > 0


def test_without_cuda_it_says_so(smoke, monkeypatch):
    monkeypatch.setattr(smoke.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="needs a CUDA GPU.*--dry-run"):
        smoke.main(["--synthetic", "--n", "8"])


def test_gpu_busy_sampled_with_nvidia_smi(smoke, monkeypatch, tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '70\\n90\\n'\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")

    def no_pynvml(self):
        raise ImportError("no pynvml")

    monkeypatch.setattr(smoke.GpuBusy, "_nvml_handle", no_pynvml)
    with smoke.GpuBusy("cuda:0") as busy:
        smoke.time.sleep(0.5)
    assert busy.source == "nvidia-smi" and busy.mean() == 80.0


def test_gpu_busy_without_any_sampler_says_why(smoke, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    monkeypatch.setattr(
        smoke.GpuBusy, "_nvml_handle", lambda self: (_ for _ in ()).throw(ImportError())
    )
    with smoke.GpuBusy("cuda:0") as busy:
        pass
    assert busy.mean() is None
    assert "pynvml unusable (ImportError) and nvidia-smi not on PATH" in busy.source

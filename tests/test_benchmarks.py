"""The benchmark runner works (tiny configuration); its timings are not tested here."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def peer_names():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import peers
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return list(peers.PEERS)


def test_runner_writes_every_table_on_the_tiny_configuration(tmp_path):
    out = tmp_path / "tiny.json"
    latest = ROOT / "benchmarks" / "results" / "latest.md"
    before = latest.stat().st_mtime if latest.exists() else None
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--config", "tiny",
                           "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rec = json.loads(out.read_text())
    assert rec["gemm"]["peak_gflops"] > 0
    rows = {r["method"]: r for r in rec["attacks"]["rows"]}
    for name in ("mini_adv DeepFool", "mini_adv one step + exact first flip along ∇f",
                 "mini_adv gradient flow"):
        assert rows[name]["median_ms"] > 0 and rows[name]["fraction_of_peak"] > 0
        assert 0 < rows[name]["success_rate_f64"] <= 1
    # every peer is measured or reported as skipped with the reason, never silently dropped
    for name in peer_names():
        assert name in rows or name in rec["attacks"]["skipped"], name
    assert rec["training"]["big"]["gflops"] > 0
    assert {r["kernel"] for r in rec["many_networks"]} == {"DeepFool", "gradient flow"}
    assert all(r["recompiles_new_values"] == 0 for r in rec["compile"])
    md = out.with_suffix(".md").read_text()
    assert "Written by `benchmarks/run.py`" in md and "| mini_adv DeepFool |" in md
    assert rec["gemm"]["attack_shapes"]["gflops"] > 0 and "at the shapes of one DeepFool" in md
    # --render-only rewrites the report from the record, measuring nothing
    out.with_suffix(".md").write_text("stale")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--render-only",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert out.with_suffix(".md").read_text() == md
    # the tiny run does not replace the published results of the book's Performance page
    assert (latest.stat().st_mtime if latest.exists() else None) == before

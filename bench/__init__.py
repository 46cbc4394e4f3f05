"""Benchmarks: the main one (`python -m bench`), scale and load.

Run from the repository root; each command is bounded in time and stops itself:

    python -m bench      # per-stage latency, cold starts, build, RSS, LangChain baseline
    python -m bench.scale    # 1k / 10k / 100k chunks, flat vs HNSW, 1M vectors
    python -m bench.load     # 20 gradio_client clients x 10 questions against app.py

Results land in `out/bench/` (`results.json`, `scale.json`, `load.json`; not in
git) and `results.md` renders all three; `python -m bench --publish` keeps a
copy in `bench/published/`. See `bench/README.md`.
"""

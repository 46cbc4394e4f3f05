"""Benchmarks beyond the main one (`python -m rag.bench`): scale and load.

Run from the repository root; each command is bounded in time and stops itself:

    python -m rag.bench      # per-stage latency, cold starts, build, RSS, LangChain baseline
    python -m bench.scale    # 1k / 10k / 100k chunks, flat vs HNSW, 1M vectors
    python -m bench.load     # 20 gradio_client clients x 10 questions against app.py

Results land beside this file (`results.json`, `scale.json`, `load.json`) and
`results.md` renders all three; see `bench/README.md`.
"""

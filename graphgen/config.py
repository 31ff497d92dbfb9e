"""Configuration: pydantic models loaded from a TOML file, then environment, then flags.

Precedence (later wins): defaults < config file (`graphgen.toml` in the working directory,
or `--config FILE` / `GRAPHGEN_CONFIG`) < environment < command-line flags. In each of
those layers a Neo4j URI without a store kind selects the Neo4j store.

Environment: OPENAI_BASE_URL, OPENAI_API_KEY, GRAPHGEN_MODEL, GRAPHGEN_CONCURRENCY,
GRAPHGEN_RPM, GRAPHGEN_TPM, GRAPHGEN_TIMEOUT, GRAPHGEN_MAX_RETRIES, GRAPHGEN_MAX_REASKS,
GRAPHGEN_JOB_TIMEOUT, GRAPHGEN_JOB_TOKENS, GRAPHGEN_MAX_TOKENS, GRAPHGEN_STRUCTURED_OUTPUT,
GRAPHGEN_JSON_OBJECT_SCHEMA, GRAPHGEN_CACHE,
GRAPHGEN_DB, GRAPHGEN_STORE, GRAPHGEN_ENGINE, NEO4J_URI, NEO4J_USERNAME, NEO4J_PASSWORD, NEO4J_DATABASE.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from graphgen.records import FUSION_STRATEGIES, AnswerType, FusionStrategy, ProblemType


class Price(BaseModel):
    """USD per million tokens."""

    input: float
    output: float


# Prices in USD per 1M tokens; override or extend with [llm.prices."model-name"] in the config.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(input=0.15, output=0.60),
    "gpt-4o": Price(input=2.50, output=10.00),
    "gpt-4.1-mini": Price(input=0.40, output=1.60),
    "gpt-4.1": Price(input=2.00, output=8.00),
    "gpt-4.1-nano": Price(input=0.10, output=0.40),
    "gpt-3.5-turbo": Price(input=0.50, output=1.50),
    "text-embedding-3-large": Price(input=0.13, output=0.0),
    "text-embedding-3-small": Price(input=0.02, output=0.0),
}


class LLMSettings(BaseModel):
    provider: str = Field("openai", description="the transport (graphgen.llm.providers): openai = any "
                                                "OpenAI-compatible API; a plugin's name; or module:attribute")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint; None = OpenAI")
    api_key: SecretStr | None = Field(None, description="never logged, cached or stored")
    model: str = "gpt-4o-mini"
    temperature: float = 0.0
    max_tokens: int | None = 1024
    seed: int | None = None
    concurrency: int = 16
    rpm: int | None = Field(None, description="requests per minute limit")
    tpm: int | None = Field(None, description="tokens per minute limit")
    timeout: float = Field(120.0, description="seconds for one HTTP request")
    max_retries: int = Field(6, description="transport retries per request (429, 5xx, timeouts, dropped connections)")
    max_reasks: int = Field(2, description="times a job asks again after an invalid or truncated reply")
    job_timeout: float | None = Field(
        600.0, description="seconds one job may take over all its retries and re-asks; None = no bound")
    job_tokens: int | None = Field(
        16000, description="tokens (prompt + completion) one job may spend over all its attempts before it "
                           "stops re-asking; None = no bound")
    structured_output: Literal["json_schema", "json_object", "text"] = Field(
        "json_schema",
        description="how to ask for JSON; replies are parsed and validated whichever is used",
    )
    json_object_schema: Literal["auto", "none", "llama.cpp", "vllm", "ollama"] = Field(
        "auto",
        description="how to send the schema in json_object mode: llama.cpp puts it in response_format.schema, "
                    "vllm in guided_json, ollama in format; none = only in the prompt; auto = ask GET /models")
    cache_path: Path | None = Field(Path("graphgen-cache.db"), description="None disables the cache")
    local_model: Path | None = Field(
        None, description="a GGUF file: graphgen serves it with llama.cpp (xllamacpp) for the run; "
                          "a --model ending in .gguf does the same")
    local_threads: int | None = Field(None, ge=1, description="llama.cpp threads [default: the idle cores, 1-8]")
    local_slots: int | None = Field(None, ge=1, description="llama.cpp slots (requests decoded together) [default 2]")
    local_ctx: int | None = Field(None, ge=512, description="context tokens per slot [default 4096]")
    fit_to_server: bool = Field(
        True, description="ask the server what it is (llama.cpp /props and /slots, vLLM and Ollama model info) "
                          "and fit concurrency, timeouts and token budgets to it, except settings given explicitly")
    prices: dict[str, Price] = Field(default_factory=dict)

    def price_for(self, model: str) -> Price | None:
        return self.prices.get(model) or DEFAULT_PRICES.get(model)

    @model_validator(mode="after")
    def _gguf_model_is_local(self) -> "LLMSettings":
        """`model = "./m.gguf"` means: serve that file locally; rows record its stem."""
        if self.local_model is None and str(self.model).lower().endswith(".gguf"):
            self.local_model = Path(self.model)
        if self.local_model is not None and (self.model == "gpt-4o-mini" or str(self.model).lower().endswith(".gguf")):
            self.model = Path(self.local_model).stem
        return self


class StoreSettings(BaseModel):
    kind: Literal["sqlite", "neo4j"] = "sqlite"
    path: Path = Path("graphgen.db")
    neo4j_uri: str | None = None
    neo4j_username: str = "neo4j"
    neo4j_password: SecretStr | None = None
    neo4j_database: str | None = None


class EmbeddingSettings(BaseModel):
    model: str = Field("all-MiniLM-L6-v2", description="sentence-transformers name or path, or an API model")
    provider: Literal["sentence-transformers", "openai"] = "sentence-transformers"
    batch_size: int = 64
    device: str = Field("cpu", description="torch device for sentence-transformers: cpu, cuda, cuda:1, mps")


class ExtractSettings(BaseModel):
    """`graphgen extract`: [extract] in graphgen.toml. Field names left unset are detected
    per file (rules in `graphgen.readers`)."""

    question_field: str | None = Field(None, description="field holding the question")
    solution_field: str | None = Field(None, description="field holding the worked solution")
    answer_field: str | None = Field(None, description="field holding the final answer")
    id_field: str | None = Field(None, description="field holding a stable id (else a content hash)")
    source: str | None = Field(None, description="dataset name recorded on each seed [default: file stem]")
    prefix_ids: bool = Field(False, description="native ids become <source>-<id> (files that all number rows 0, 1, 2 ...)")
    skip_invalid: bool = Field(False, description="go on past bad rows, writing them with reasons to the rejects file")
    include_solution: bool = Field(False, description="show the seed's solution to the LLM too")


class VariantsSettings(BaseModel):
    """`graphgen generate variants` (MMOS problem generator): [variants] in graphgen.toml."""

    modes: list[Literal["distribution", "similar", "scale"]] = Field(
        default_factory=lambda: ["distribution", "similar", "scale"],
        description="distribution: + int(N(1000, 300)); similar: + N(5, 1); scale: x [1/3, 3]")
    per_question: int = Field(1, ge=1, description="variants per question and mode")
    tries: int = Field(3, ge=1, description="draws per variant before it counts as rejected")
    seed: int = Field(0, description="same seed, same inputs -> same variants")
    min_agreement: int = Field(2, ge=1, description="code paths that must agree on the new answer")
    rewrite: bool = Field(False, description="one LLM call per kept variant to fix wording")
    timeout_s: float = Field(5.0, gt=0, description="sandbox wall-clock limit per program")
    workers: int | None = Field(None, description="sandbox workers [default: CPU count]")
    isolation: Literal["auto", "bwrap", "process"] = Field("auto", description="sandbox: bubblewrap if present")


class SolveSettings(BaseModel):
    """`graphgen solve` (MMOS minimal optimal set): [solve] in graphgen.toml."""

    paths: int = Field(4, ge=1, description="reasoning paths sampled per question and style")
    temperature: float = Field(0.7, ge=0, description="sampling temperature of the paths")
    style: Literal["cot", "code", "both"] = "both"
    keep: int = Field(3, ge=1, description="most diverse correct paths kept per question")
    min_agreement: float = Field(0.5, ge=0, le=1, description="no gold: share of votes the majority needs")
    difficulty_aware: bool = Field(False, description="sample more paths where the pass rate is low")
    max_paths: int = Field(16, ge=1, description="difficulty-aware cap on paths per question and style")
    answer_field: str | None = Field(None, description="field holding the gold answer (default: detected)")
    check_timeout_s: int = Field(5, ge=1, description="time limit of one equivalence check")
    program_timeout_s: float = Field(5.0, gt=0, description="wall-clock limit of one program")
    program_memory_mb: int = Field(512, gt=0)
    sandbox_workers: int | None = Field(None, description="default: one per CPU")
    isolation: Literal["auto", "bwrap", "process"] = "auto"


class JudgeSettings(BaseModel):
    """`[judge]`: the model judge behind the rule gates (graphgen.judge). One mode per gate:
    `off` (the rule alone), `fallback` (the judge only where the rule says no or cannot
    decide), `always` (the judge on every candidate the rule guards let through)."""

    model: str | None = Field(None, description="judge model (default: the run's [llm] model)")
    max_tokens: int = Field(256, ge=16, description="reply budget of one judgement (a short reason and a yes/no)")
    concepts: Literal["off", "fallback", "always"] = Field("off", description="graph canonicalize: same concept?")
    answers: Literal["off", "fallback", "always"] = Field("off", description="solve: is the path's answer the gold's? "
                                                          "generate variants: do two programs print the same answer?")
    contamination: Literal["off", "fallback", "always"] = Field(
        "off", description="filter: is a row the same problem as its nearest benchmark items? (fallback = always here: "
        "the n-gram rule has already removed what it can)")
    min_cosine: float = Field(0.6, ge=-1, le=1, description="canonicalize: embedding cosine a pair needs to be judged")
    concept_neighbours: int = Field(2, ge=1, description="canonicalize: a pair is judged only when one name is among "
                                    "the other's nearest this many (of its kind)")
    questions: Literal["off", "fallback", "always"] = Field(
        "always", description="check: is each question well-posed, with one answer, of which answer and problem type? "
        "(no rule can say whether a question is well-posed, so fallback = always here; off: the rule pre-checks alone)")
    contamination_top_k: int = Field(3, ge=1, description="filter: nearest benchmark items judged per row")
    contamination_floor: float = Field(0.75, ge=-1, le=1, description="filter: cosine a benchmark neighbour needs to be judged")


class CheckSettings(BaseModel):
    """`graphgen check`: which problem types fail the question check (graphgen.stages.check)."""

    fail_problem_types: list[ProblemType] = Field(
        default_factory=lambda: ["proof", "invalid"],
        description="problem types that fail the check besides ill-posed and several-answer questions "
        "(NeMo-Skills also drops multiple_choice and yes_no; export --problem-type selects too)")
    skip_failed: bool = Field(True, description="solve and generate variants skip rows whose stored question check "
                              "failed (graphgen.status.failed_check); --include-failed-check turns it off")


class FilterSettings(BaseModel):
    """`graphgen filter`: dedup and benchmark decontamination (graphgen.stages.filter)."""

    benchmarks: list[Path] = Field(default_factory=list, description="benchmark files or directories to decontaminate against")
    benchmark_question_field: str | None = Field(None, description="question field of the benchmark files [auto, as for seeds]")
    ngram: Literal[8, 10, 13] = Field(13, description="decontamination n-gram length in normalised word tokens")
    number_variants: bool = Field(True, description="also match n-grams with the numbers masked (copies with numbers changed)")
    min_item_coverage: float = Field(0.5, ge=0, le=1, description="a plain n-gram match counts when the row's shared n-grams "
                                     "cover at least this share of the benchmark item's words (0: any shared n-gram)")
    boilerplate_items: int = Field(0, ge=0, description="an n-gram shared by at least this many benchmark items is boilerplate "
                                   "(drawing code, stock phrases) and never counts as contamination; 0: every n-gram counts")
    solutions: bool = Field(False, description="also check each row's solution against the benchmarks")
    exact: bool = Field(True, description="remove exact duplicates (normalised question)")
    near: bool = Field(True, description="remove MinHash near duplicates")
    near_numbers: Literal["masked", "exact"] = Field(
        "masked", description="near-duplicate shingles: every number as one placeholder (masked: a copy with its "
        "numbers shifted, the commonest near copy a generator makes, is found) or numbers as written (exact)")
    jaccard: float = Field(0.8, gt=0, le=1, description="near-duplicate threshold (estimated Jaccard of shingle sets)")
    shingle: int = Field(2, ge=1, le=5, description="shingles are word 1..k-grams")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations")
    minhash: Literal["rensa", "datasketch"] = Field("rensa", description="MinHash library (measured: rensa is faster)")
    semantic: bool = Field(False, description="embedding near duplicates and benchmark paraphrase flags")
    semantic_threshold: float = Field(0.95, description="cosine for semantic near duplicates")
    paraphrase_threshold: float = Field(0.9, description="cosine to a benchmark item flagged as a paraphrase")
    drop_paraphrases: bool = Field(False, description="remove flagged paraphrases instead of only reporting them")
    embeddings_cache: Path = Field(Path("graphgen-embeddings.db"), description="embedding cache file (--semantic)")
    verified_field: str = Field("verified", description="row field that marks a verified row (kept first)")
    batch_rows: int = Field(20000, ge=1, description="rows per vectorised batch")
    examples: int = Field(5, ge=0, description="examples per benchmark and per duplicate kind in the report")


# --- stage sections: one per stage, so one graphgen.toml describes a whole run ----------


class WalkOptions(BaseModel):
    """How MathScale walks are drawn (graphgen.sample's docstring gives the exact semantics)."""

    topic_steps: tuple[int, int] = Field((1, 2), description="steps on the topic subgraph (min, max)")
    kp_steps: tuple[int, int] = Field((0, 4), description="steps on the knowledge-point subgraph (min, max)")
    start: Literal["frequency", "uniform"] = Field("frequency", description="start-topic distribution")
    edge_weight: Literal["count", "weight"] = Field(
        "count", description="edge attribute steps are proportional to (MathScale: co-occurrence count)"
    )
    coverage: bool = Field(False, description="bias starts toward topics covered least so far")
    coverage_alpha: float = Field(1.0, ge=0, description="start weight / (1 + times covered) ** alpha")
    coverage_interval: int = Field(
        4096, ge=1, description="walks between coverage re-weightings once warmed up (the first rounds are 1, 2, 4, ... walks)"
    )
    exemplars: int = Field(0, ge=0, description="k few-shot seeds per sample (needs an ExemplarIndex)")
    max_walks: int | None = Field(
        None, ge=1, description="give up after this many walks (default 10 * n + 10,000)"
    )

    @model_validator(mode="after")
    def _ranges(self) -> WalkOptions:
        for name in ("topic_steps", "kp_steps"):
            lo, hi = getattr(self, name)
            if lo < 0 or hi < lo:
                raise ValueError(f"{name} must satisfy 0 <= min <= max, got {(lo, hi)}")
        return self


class SampleSettings(WalkOptions):
    """`graphgen sample concepts`: [sample] in graphgen.toml (walk options; the CLI's defaults)."""

    exemplars: int = Field(3, ge=0, description="k few-shot seeds per sample, closest by knowledge-point Jaccard")


class PairOptions(BaseModel):
    """How fusion pairs are chosen. Filters apply *before* top-k: a seed's pick is its
    nearest neighbour among the candidates that pass (same source, below max_similarity,
    not a duplicate); a pick below min_similarity is dropped, not replaced."""

    model_config = ConfigDict(extra="forbid")

    top_k: int = Field(1, ge=1, description="neighbours taken per seed")
    same_source: bool = Field(False, description="pair only seeds of the same source dataset")
    min_similarity: float = Field(0.0, ge=-1.0, le=1.0, description="drop picks below this")
    max_similarity: float = Field(
        0.98, ge=-1.0, le=1.0, description="skip neighbours above this (near-duplicates make trivial fusions)"
    )
    mutual_only: bool = Field(False, description="keep a pair only if each seed picked the other")
    max_uses_per_seed: int | None = Field(
        None, ge=1, description="at most this many pairs per seed (strongest pairs win)"
    )
    exact_threshold: int = Field(
        50_000, ge=0,
        description="searched groups larger than this (and than 256) use an approximate faiss index",
    )
    index: Literal["ivf-pq", "ivf", "hnsw"] = Field(
        "ivf-pq",
        description="approximate index: IVF with 4-bit PQ fast-scan lists re-ranked exactly "
        "(fastest), plain IVF-Flat, or HNSW",
    )
    nlist: int | None = Field(None, ge=1, description="IVF lists (default ~4*sqrt(n))")
    nprobe: int | None = Field(None, ge=1, description="IVF lists probed per query")
    refine_factor: int = Field(8, ge=1, description="ivf-pq: candidates re-ranked exactly, per wanted one")
    hnsw_m: int = Field(32, ge=4)
    ef_search: int = Field(128, ge=1)
    recall_sample: int = Field(
        256, ge=0, description="approximate search: queries re-checked by exact search (0 = no check)"
    )
    memory_mb: int = Field(512, ge=16, description="bound for one block of the similarity matrix")
    random_seed: int = 0

    @model_validator(mode="after")
    def _check_range(self) -> PairOptions:
        if self.min_similarity > self.max_similarity:
            raise ValueError("min_similarity must not exceed max_similarity")
        return self


class GraphPairOptions(PairOptions):
    """Graph-guided pairs. Score(A, B) = sum of strong-edge weights between A's concepts
    not in B and B's concepts not in A, times (1 - Jaccard(A, B)); similarity =
    score / (1 + score), in [0, 1). Similarity filters apply to that value."""

    max_similarity: float = Field(1.0, ge=-1.0, le=1.0)
    max_overlap: float = Field(0.34, ge=0.0, le=1.0, description="max Jaccard overlap of concept sets")
    min_edge_weight: float = Field(0.05, ge=0.0, description="an edge is strong from this weight")
    min_edge_count: int = Field(2, ge=1, description="... and this many supporting seeds")


class PairSettings(BaseModel):
    """`graphgen sample fusion-pairs`: [pairs] in graphgen.toml, with [pairs.embedding] and
    [pairs.graph] holding each method's options."""

    method: Literal["embedding", "graph"] = Field(
        "embedding", description="nearest neighbours by embedding (MathFusion), or graph-guided")
    embeddings_cache: Path = Field(Path("graphgen-embeddings.db"), description="embedding cache (per model and text)")
    embedding: PairOptions = Field(default_factory=PairOptions)
    graph: GraphPairOptions = Field(default_factory=GraphPairOptions)


class GenerateSettings(BaseModel):
    """`graphgen generate questions` / `fusion`: [generate] in graphgen.toml."""

    difficulty: str = Field("medium", description="e.g. easy, medium, hard, competition")
    style: str = Field("word problem", description="e.g. 'word problem', 'symbolic', 'multiple choice'")
    strategies: list[FusionStrategy] = Field(
        default_factory=lambda: list(FUSION_STRATEGIES), description="MathFusion fusion strategies to run")
    max_copy_overlap: float = Field(
        0.5, ge=0, le=1, description="a generated question sharing more than this share of its word 5-grams with "
                                     "one of its exemplar seeds is a copy: rejected with the reason, asked again "
                                     "within the job's budget (1 = no check)")


ExportFormat = Literal["jsonl", "parquet", "hf"]
ExportLayout = Literal["alpaca", "sharegpt", "chatml", "raw"]


class ExportSettings(BaseModel):
    """`graphgen export`: [export] in graphgen.toml."""

    format: ExportFormat = Field("jsonl", description="file format; hf = a `datasets` save_to_disk directory")
    layout: ExportLayout = Field("chatml", description="row layout; every layout keeps lineage in `metadata`")
    system_prompt: str | None = Field(None, description="system turn for sharegpt/chatml")
    include_failed: bool = Field(False, description="also export rows whose generation failed")
    include_all: bool = Field(False, description="also export rows a gate left out (unverified, duplicate, contaminated, ...), "
                              "each with its status in metadata")
    verified_by: Literal["rule", "judge", "both", "any"] = Field(
        "rule", description="which verdict makes a row verified (graphgen.status.is_verified): the rule's "
        "(math-verify / vote), the judge's, both or any")
    answer_types: list[AnswerType] = Field(default_factory=list, description="only rows `graphgen check` gave one of "
                                           "these answer types (empty: any)")
    problem_types: list[ProblemType] = Field(default_factory=list, description="only rows `graphgen check` gave one of "
                                             "these problem types (empty: any)")


class CanonicalizeSettings(BaseModel):
    """`graphgen graph canonicalize`: when two concept names of one kind are one concept."""

    min_cosine: float = Field(0.8, description="embedding cosine two names need (besides matching words)")
    word_ratio: float = Field(0.7, description="rapidfuzz ratio (0-1) each differing word needs with its counterpart")
    acronym_min_cosine: float = Field(0.5, description="cosine an acronym needs with its expansion ('GCD')")
    neighbours: int = Field(10, description="nearest names per name checked by embedding")
    exact_threshold: int = Field(50_000, ge=0, description="kinds with more names than this (and than 256) "
                                 "find neighbours through an approximate faiss index instead of exact search")
    embeddings_cache: Path | None = Field(Path("graphgen-embeddings.db"), description="None disables the cache")


class ReportSettings(BaseModel):
    """`graphgen report`: how much of the graph to draw and list."""

    top_topics: int = Field(30, description="topics drawn in the topic graph and listed")
    edges_per_topic: int = Field(3, description="strongest topic-topic edges drawn per topic")
    top_rows: int = Field(15, description="rows in the top-N tables")
    examples: int = Field(5, ge=0, description="example rows shown per kind of generated row")


class EngineSettings(BaseModel):
    """Where a stage's LLM jobs run: this process (`local`), a Ray cluster (`ray`), or the
    provider's Batch API (`batch`). See graphgen.engine."""

    kind: Literal["local", "ray", "batch"] = "local"
    ray_address: str = Field("auto", description="'auto' (RAY_ADDRESS or the cluster on this node), 'local', or host:port")
    block_size: int = Field(200, ge=1, description="units per Ray task")
    ray_tasks: int | None = Field(None, ge=1, description="Ray tasks at once [default: the cluster's CPUs]")
    batch_max_requests: int = Field(50_000, ge=1, description="requests per batch (provider limit 50,000)")
    batch_max_bytes: int = Field(190_000_000, ge=1, description="bytes per batch input file (provider limit 200 MB)")
    batch_poll_s: float = Field(30.0, gt=0, description="seconds between batch status polls")
    batch_window: str = "24h"
    batch_price_factor: float = Field(0.5, gt=0, description="batch price as a fraction of the online price")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data  # engine = "ray" in graphgen.toml


class PipelineSettings(BaseModel):
    """`graphgen run`: [pipeline] in graphgen.toml: which stages run, how much, where to."""

    seeds: list[Path] = Field(default_factory=list, description="seed files (the command's SEEDS replace them)")
    annotations: Path | None = Field(None, description="hand-written extractions instead of the LLM (extract --from-annotations)")
    out_dir: Path = Field(Path("run"), description="every stage's outputs go here")
    samples: int = Field(200, ge=1, description="concept samples, so about this many generated questions")
    seed: int = Field(7, description="random seed of the sampler")
    fusion: bool = Field(False, description="also fusion pairs and fused questions (MathFusion; needs embeddings)")
    variants: bool = Field(True, description="number-shifted variants of verified questions (MMOS), themselves solved")
    check: bool = Field(True, description="check every generated row for being well-posed (graphgen check; the "
                        "judge per [judge] questions) before filter and export")
    paths: bool = Field(True, description="also export one training row per verified reasoning path")


class Settings(BaseModel):
    llm: LLMSettings = Field(default_factory=LLMSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    extract: ExtractSettings = Field(default_factory=ExtractSettings)
    variants: VariantsSettings = Field(default_factory=VariantsSettings)
    solve: SolveSettings = Field(default_factory=SolveSettings)
    filter: FilterSettings = Field(default_factory=FilterSettings)
    sample: SampleSettings = Field(default_factory=SampleSettings)
    pairs: PairSettings = Field(default_factory=PairSettings)
    generate: GenerateSettings = Field(default_factory=GenerateSettings)
    export: ExportSettings = Field(default_factory=ExportSettings)
    canonicalize: CanonicalizeSettings = Field(default_factory=CanonicalizeSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    check: CheckSettings = Field(default_factory=CheckSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)


_ENV: dict[str, tuple[str, str]] = {
    "GRAPHGEN_LLM_PROVIDER": ("llm", "provider"),
    "OPENAI_BASE_URL": ("llm", "base_url"),
    "OPENAI_API_KEY": ("llm", "api_key"),
    "GRAPHGEN_MODEL": ("llm", "model"),
    "GRAPHGEN_CONCURRENCY": ("llm", "concurrency"),
    "GRAPHGEN_RPM": ("llm", "rpm"),
    "GRAPHGEN_TPM": ("llm", "tpm"),
    "GRAPHGEN_TIMEOUT": ("llm", "timeout"),
    "GRAPHGEN_MAX_RETRIES": ("llm", "max_retries"),
    "GRAPHGEN_MAX_REASKS": ("llm", "max_reasks"),
    "GRAPHGEN_JOB_TIMEOUT": ("llm", "job_timeout"),
    "GRAPHGEN_JOB_TOKENS": ("llm", "job_tokens"),
    "GRAPHGEN_MAX_TOKENS": ("llm", "max_tokens"),
    "GRAPHGEN_STRUCTURED_OUTPUT": ("llm", "structured_output"),
    "GRAPHGEN_JSON_OBJECT_SCHEMA": ("llm", "json_object_schema"),
    "GRAPHGEN_CACHE": ("llm", "cache_path"),
    "GRAPHGEN_LOCAL_MODEL": ("llm", "local_model"),
    "GRAPHGEN_STORE": ("store", "kind"),
    "GRAPHGEN_DB": ("store", "path"),
    "NEO4J_URI": ("store", "neo4j_uri"),
    "NEO4J_USERNAME": ("store", "neo4j_username"),
    "NEO4J_PASSWORD": ("store", "neo4j_password"),
    "NEO4J_DATABASE": ("store", "neo4j_database"),
    "GRAPHGEN_EMBEDDING_MODEL": ("embedding", "model"),
    "GRAPHGEN_EMBEDDING_PROVIDER": ("embedding", "provider"),
    "GRAPHGEN_ENGINE": ("engine", "kind"),
    "GRAPHGEN_JUDGE_MODEL": ("judge", "model"),
    "GRAPHGEN_EMBEDDING_DEVICE": ("embedding", "device"),
}


# Settings a word turns off (None): caches disabled, bounds lifted.
_OFF_MEANS_NONE: dict[tuple[str, str], tuple[str, ...]] = {
    ("llm", "cache_path"): ("off", "none", "false", "0"),
    ("canonicalize", "embeddings_cache"): ("off", "none", "false", "0"),
    ("llm", "job_timeout"): ("off", "none"),
    ("llm", "job_tokens"): ("off", "none"),
}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict):
            out[key] = _merge(out.get(key) or {}, value)
        elif value is not None:
            out[key] = value
    return out


def _uri_selects_neo4j(layer: dict[str, Any]) -> dict[str, Any]:
    """The one rule for choosing the store: a layer (file, environment or flags) that gives
    a Neo4j URI but no store kind selects Neo4j; a kind given in the same layer wins."""
    store = layer.get("store")
    if isinstance(store, dict) and store.get("neo4j_uri") and store.get("kind") is None:
        return {**layer, "store": {**store, "kind": "neo4j"}}
    return layer


def load_settings(
    config_file: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Defaults < file < environment < overrides (e.g. CLI flags; None values ignored)."""
    env = dict(os.environ if env is None else env)
    data: dict[str, Any] = {}
    path = Path(config_file or env.get("GRAPHGEN_CONFIG") or "graphgen.toml")
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML: {exc}") from None
    elif config_file:
        raise ValueError(f"{path}: config file not found")
    if isinstance(data.get("engine"), str):
        data["engine"] = {"kind": data["engine"]}  # the `engine = "ray"` shorthand
    from_env: dict[str, dict[str, Any]] = {}
    for var, (section, key) in _ENV.items():
        if env.get(var):
            from_env.setdefault(section, {})[key] = env[var]
    file_layer, env_layer, flag_layer = (_uri_selects_neo4j(x) for x in (data, from_env, overrides or {}))
    data = _merge(_merge(file_layer, env_layer), flag_layer)
    for (section, key), words in _OFF_MEANS_NONE.items():  # from any layer, flags included
        if str(data.get(section, {}).get(key, "")).lower() in words:
            data[section][key] = None
    settings = Settings.model_validate(data)
    from graphgen.scrub import remember_secret

    remember_secret(settings.llm.api_key)
    remember_secret(settings.store.neo4j_password)
    return settings

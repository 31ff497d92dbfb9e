"""Reading the user's files: seed questions (any of the formats in `formats`, fields detected
by `fields`), generated-row files read as questions, and benchmark files for decontamination
(`benchmarks`). Stages import from here."""

from graphgen.readers.benchmarks import (
    BenchmarkSummary,
    Example,
    benchmark_files,
    benchmark_source,
    benchmark_summaries,
    load_benchmarks,
    read_benchmark_questions,
)
from graphgen.readers.fields import FieldMap, stable_seed_id
from graphgen.readers.seeds import (
    REASONS,
    QuestionBatch,
    QuestionRow,
    SeedInputError,
    SeedReadStats,
    read_question_batches,
    read_question_rows,
    read_seeds,
    store_seeds,
    write_rejects,
)

__all__ = [
    "BenchmarkSummary", "Example", "FieldMap", "QuestionBatch", "QuestionRow", "REASONS", "SeedInputError", "SeedReadStats",
    "benchmark_files", "benchmark_source", "benchmark_summaries", "load_benchmarks", "read_benchmark_questions", "read_question_batches", "read_question_rows", "read_seeds",
    "stable_seed_id", "store_seeds", "write_rejects",
]

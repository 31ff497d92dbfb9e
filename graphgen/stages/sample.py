"""Stage `sample concepts` (MathScale): concept combinations by random walks over the store's
concept graph (the walk library is graphgen.sample), streamed to a JSONL file.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, Field

from graphgen.config import Settings
from graphgen.sample.arrays import ConceptGraphArrays
from graphgen.sample.exemplars import ExemplarIndex
from graphgen.sample.walks import ConceptSampler, SampleStats
from graphgen.stage import StageError, StageReport
from graphgen.store.base import GraphStore


class SampleInputs(BaseModel):
    """One `graphgen sample concepts` invocation."""

    count: int = Field(ge=0, description="distinct concept combinations wanted")
    output: Path = Field(description="samples JSONL (written atomically)")
    seed: int = Field(0, description="same seed, same graph, same options -> byte-identical output")


class SampleReport(StageReport):
    stage: str = "sample concepts"
    output: str = ""
    requested: int = 0
    written: int = 0
    stats: SampleStats = Field(default_factory=SampleStats)

    def lines(self) -> list[str]:
        st = self.stats
        return [
            f"wrote {self.written} samples to {self.output} ({st.walks} walks, {st.duplicates} duplicate "
            f"combinations dropped, {st.dropped_no_kp} walks dropped at a topic without knowledge points)",
            f"coverage: {st.concepts_covered}/{st.concepts_total} concepts ({st.topics_covered}/{st.topics_total} "
            f"topics, {st.kps_covered}/{st.kps_total} knowledge points)",
            *StageReport.lines(self)[1:],
        ]


def run(settings: Settings, store: GraphStore, inputs: SampleInputs) -> SampleReport:
    """MathScale concept samples from the store's graph, streamed to `inputs.output`."""
    from graphgen.jsonl import write_lines

    t0 = time.perf_counter()
    options = settings.sample
    graph = ConceptGraphArrays.from_store(store)
    index = ExemplarIndex(store.seed_concepts()) if options.exemplars else None
    report = SampleReport(output=str(inputs.output), requested=inputs.count)
    try:
        sampler = ConceptSampler(graph, options, index)
    except ValueError as exc:
        raise StageError(f"{exc}; run `graphgen extract` first") from None
    report.written = write_lines(sampler.jsonl_lines(inputs.count, inputs.seed, report.stats), inputs.output)
    if report.stats.exhausted:
        report.warnings.append(f"only {report.written} distinct combinations found before the walk limit; "
                               f"the graph may be too small for -n {inputs.count}")
    report.elapsed_s = time.perf_counter() - t0
    return report

"""JSON Schemas in `schema/`, generated from the pydantic models.

LLM output schemas are what the client sends as `response_format`; record schemas describe
every file graphgen writes. `python -m graphgen.schemas` regenerates them; a test fails when
a model and its checked-in schema drift apart.
"""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path

from pydantic import BaseModel

from graphgen.resources import read_resource

# schema file name -> "module:Model"
SCHEMAS: dict[str, str] = {
    # LLM outputs
    "extraction": "graphgen.records:ExtractionOutput",
    "generated_qa": "graphgen.records:GeneratedQA",
    "variant_rewrite": "graphgen.stages.variants:VariantRewrite",
    "cot_solution": "graphgen.records:CotSolution",
    "program_solution": "graphgen.records:ProgramSolution",
    "judge_reply": "graphgen.judge:JudgeReply",
    "question_check_reply": "graphgen.records:QuestionCheckReply",
    # record files
    "seed_question": "graphgen.records:SeedQuestion",
    "extraction_record": "graphgen.records:Extraction",
    "concept": "graphgen.records:Concept",
    "concept_edge": "graphgen.records:ConceptEdge",
    "concept_sample": "graphgen.records:ConceptSample",
    "fusion_pair": "graphgen.records:FusionPair",
    "generated_question": "graphgen.records:GeneratedQuestion",
    "rejected_row": "graphgen.records:RejectedRow",
    "variant_reject": "graphgen.stages.variants:VariantReject",
    "solve_question": "graphgen.records:SolveQuestion",
    "solve_path": "graphgen.records:SolvePath",
    "solve_verdict": "graphgen.records:SolveVerdict",
    "filter_removed_row": "graphgen.records:RemovedRow",
    "filter_decision": "graphgen.records:FilterDecision",
    "question_check": "graphgen.records:QuestionCheck",
    "pass_rate": "graphgen.records:PassRate",
    # export layouts
    "alpaca_row": "graphgen.stages.export:AlpacaRow",
    "sharegpt_row": "graphgen.stages.export:ShareGPTRow",
    "chatml_row": "graphgen.stages.export:ChatMLRow",
    "raw_row": "graphgen.stages.export:RawRow",
}


def model_for(name: str) -> type[BaseModel]:
    module, _, attr = SCHEMAS[name].partition(":")
    return getattr(import_module(module), attr)


def render(name: str) -> str:
    return json.dumps(model_for(name).model_json_schema(), indent=2, sort_keys=True) + "\n"


def load(name: str) -> dict:
    """The checked-in schema shipped with the package (graphgen.schema)."""
    return json.loads(read_resource("schema", f"{name}.json"))


def write_all(directory: Path) -> list[Path]:
    written = []
    for name in SCHEMAS:
        path = directory / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_all(Path(__file__).resolve().parents[1] / "schema"):
        print(p)

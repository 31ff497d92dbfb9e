"""The pipeline's stages, one module each, in pipeline order:

extract -> sample (concepts) / pairs (fusion pairs) -> generate -> solve -> variants ->
check -> filter -> export, with canonicalize (concept names) and report beside them.

Every stage has one shape, `run(settings, store, inputs) -> Report` (graphgen.stage). Stages
import shared pieces (readers, rows, status, answers, knn, paths, sandbox, llm, store, ...),
never each other (tests/test_architecture.py checks it); graphgen.pipeline runs them in turn.
"""

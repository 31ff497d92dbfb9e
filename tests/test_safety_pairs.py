"""fusion-pairs with every embedding cached never loads the model (issue 8 item 21)."""

import subprocess
import sys

from clirun import cli_env, example_workspace

PROBE = """
import sys
from graphgen_cli.main import cli
try:
    cli(sys.argv[1:], standalone_mode=False)
finally:
    print("MODEL-LOADED" if "sentence_transformers" in sys.modules else "MODEL-NOT-LOADED")
"""


def test_cached_embeddings_do_not_load_the_model(tmp_path):
    example_workspace(tmp_path)
    first = subprocess.run([sys.executable, "-c", PROBE, "sample", "fusion-pairs", "-o", "a.jsonl"], cwd=tmp_path,
                           env=cli_env(), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert "MODEL-LOADED" in first.stdout
    second = subprocess.run([sys.executable, "-c", PROBE, "sample", "fusion-pairs", "-o", "b.jsonl"], cwd=tmp_path,
                            env=cli_env(), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "MODEL-NOT-LOADED" in second.stdout
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    for out in (first, second):  # no library progress bars or load reports in graphgen's output
        assert "Batches" not in out.stderr and "Loading" not in out.stderr and "it/s]" not in out.stderr.replace("text/s]", "")

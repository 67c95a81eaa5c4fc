"""Timeline pictures under pabot: each process's tests get their SVG in the merged log.html,
and ``tribes-qa run`` writes timeline.html for every suite of the run.

The history is synthetic (written by a helper library from inside each test, to the path the
library's labels give: the merged output directory, the process's suite directory), so this
proves where the pictures come from and where they land, whatever records the recorder writes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tests.parallel.conftest import Env, load

WRITER = """
import json
import time

from robot.libraries.BuiltIn import BuiltIn
from tribesqa.reporting.timeline_page import history_path


def write_synthetic_history(node):
    builtin = BuiltIn()
    labels = builtin.get_library_instance("tribesqa.library.TribesLibrary").ctx.labels
    test = builtin.get_variable_value("${SUITE NAME}") + "." + builtin.get_variable_value("${TEST NAME}")
    path = history_path(labels.output_dir, labels.suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.monotonic()
    rows = {node: {"status": "syncing"}}
    with path.open("a") as out:
        for seq, (kind, what, value) in enumerate([
            ("observation", "cluster_nodes.list", rows),
            ("invoke", "legion.join", {}),
            ("ok", "legion.join", {}),
        ], 1):
            out.write(json.dumps({"seq": seq, "type": kind, "test": test, "node": node,
                                  "what": what, "op": "op-1" if kind != "observation" else None,
                                  "mono": now + seq / 100, "wall": "2026-12-03T07:00:00Z",
                                  "digest": None, "value": value}) + "\\n")
"""

SUITE = """*** Settings ***
Library    tribesqa.library.TribesLibrary
Library    history_writer.py

*** Test Cases ***
Drawn In {name}
    Write Synthetic History    {node}
"""


def svg_of(test: object) -> ET.Element:
    [message] = [m.message for m in test.body if m.type == "MESSAGE" and m.html]
    return ET.fromstring(message)[0]


def test_each_pabot_process_draws_its_tests_into_the_merged_log_and_the_run_page(env: Env) -> None:
    data = env.tmp / "data"
    data.mkdir()
    (data / "history_writer.py").write_text(WRITER)
    (data / "alpha.robot").write_text(SUITE.format(name="Alpha", node="hetzner-1"))
    (data / "beta.robot").write_text(SUITE.format(name="Beta", node="ovh-1"))
    out = env.tmp / "out"
    done = env.tribes_qa(
        "run", "--parallel", "2", "--target", str(env.target), "--outputdir", str(out),
        "--", "--pythonpath", str(data), str(data / "alpha.robot"), str(data / "beta.robot"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tests = {test.name: test for test in load(out / "output.xml").suite.all_tests}
    assert sorted(tests) == ["Drawn In Alpha", "Drawn In Beta"]
    for name, node in (("Drawn In Alpha", "hetzner-1"), ("Drawn In Beta", "ovh-1")):
        svg = svg_of(tests[name])
        assert svg.get("data-title") == tests[name].full_name
        bands = [e for e in svg.iter() if e.get("class") == "band"]
        assert [(b.get("data-node"), b.get("data-status")) for b in bands] == [(node, "syncing")]
    histories = sorted(p.parent.name for p in (out / "artifacts").glob("*/history.jsonl"))
    assert len(histories) == 2, histories
    page = (out / "timeline.html").read_text()
    assert page.count("<svg ") == 2 and "Drawn In Alpha" in page and "Drawn In Beta" in page
    assert f"Timeline: {(out / 'timeline.html').resolve()}" in done.stderr
    assert Path(out / "run.json").is_file()

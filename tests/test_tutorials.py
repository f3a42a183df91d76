"""The tutorials run end to end (fast mode), so they cannot rot."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "tutorials")


def execute(name: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(os.path.join(TUTORIALS, name), as_version=4)
    os.environ["TFP_TNAF_TUTORIAL_FAST"] = "1"
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": TUTORIALS}}).execute()
    finally:
        del os.environ["TFP_TNAF_TUTORIAL_FAST"]
    return notebook


def outputs_text(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(output.get("text", "") for cell in notebook.cells
                     if cell.cell_type == "code" for output in cell.outputs)


@pytest.mark.parametrize("name", ["two_moons.ipynb", "siggraph.ipynb"])
def test_tutorial_runs_and_compares_all_six_flows(name):
    notebook = execute(name)
    text = outputs_text(notebook)
    for flow in ("MAF", "IAF", "RealNVP+BN", "NAF", "B-NAF", "T-NAF", "Invert(T-NAF)"):
        assert f"| {flow} |" in text, flow
    assert "nan" not in text.lower()
    images = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
              if "image/png" in o.get("data", {})]
    assert images, "the density figure is missing"


def test_distillation_tutorial_compares_teacher_and_student():
    notebook = execute("distillation.ipynb")
    text = outputs_text(notebook)
    for row in ("| T-NAF teacher |", "| Invert(NAF) student |"):
        assert row in text, row
    assert "KL(student || teacher)" in text and "nan" not in text.lower()
    images = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
              if "image/png" in o.get("data", {})]
    assert images, "the figure of densities and samples is missing"

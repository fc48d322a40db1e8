"""Workflows as configuration: YAML (source → operators → target) compiled into Dagster assets."""

from __future__ import annotations

from medlake.workflows.assets import build_workflow_assets, step_metadata
from medlake.workflows.errors import WorkflowError, WorkflowStepFailed
from medlake.workflows.registry import OPERATORS, build_operator, operator_class
from medlake.workflows.run import StepReport, WorkflowRun, run_workflow
from medlake.workflows.spec import SCENARIOS, StepSpec, WorkflowSpec, load_workflow, load_workflows
from medlake.workflows.templates import TEMPLATES_DIR, copy_templates, template_files

__all__ = [
    "OPERATORS",
    "SCENARIOS",
    "TEMPLATES_DIR",
    "StepReport",
    "StepSpec",
    "WorkflowError",
    "WorkflowRun",
    "WorkflowSpec",
    "WorkflowStepFailed",
    "build_operator",
    "build_workflow_assets",
    "copy_templates",
    "load_workflow",
    "load_workflows",
    "operator_class",
    "run_workflow",
    "step_metadata",
    "template_files",
]

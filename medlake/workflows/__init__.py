"""Workflows as configuration: YAML (source → operators → target) compiled into Dagster assets."""

import lazy_loader

# Each name's module is imported on first use, so using one part never loads the others' libraries.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "assets": ["build_workflow_assets", "step_metadata"],
        "errors": ["WorkflowError", "WorkflowStepFailed"],
        "registry": ["OPERATORS", "build_operator", "operator_class"],
        "run": ["StepReport", "WorkflowRun", "run_workflow"],
        "spec": ["SCENARIOS", "StepSpec", "WorkflowSpec", "load_workflow", "load_workflows"],
        "templates": ["TEMPLATES_DIR", "copy_templates", "template_files"],
    },
)

"""Medical operators: units of governance with business meaning, composed into workflows by configuration."""

from medlake.operators.base import Operator, OperatorContext, OperatorResult, StepStatus

__all__ = ["Operator", "OperatorContext", "OperatorResult", "StepStatus"]

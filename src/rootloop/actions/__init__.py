"""Typed actions and the gates every one of them passes before any side effect."""

from rootloop.models.actions import Action, ActionResult, parse_action

__all__ = ["Action", "ActionResult", "parse_action"]

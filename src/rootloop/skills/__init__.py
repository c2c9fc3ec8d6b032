"""Skills: one module per kind of node check. See ``registry`` for the list."""

from rootloop.skills.base import BaseSkill, CheckContext, Node, Skill, SkillSettings

__all__ = ["BaseSkill", "CheckContext", "Node", "Skill", "SkillSettings"]

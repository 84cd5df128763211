"""Test problems: the reference problems of the tutorials and classic test functions."""

from ._base import Problem, get, names, register_problem
from .mixed import SpaceProblem, space_problem, space_problem_names

__all__ = [
    "Problem",
    "SpaceProblem",
    "get",
    "names",
    "register_problem",
    "space_problem",
    "space_problem_names",
]

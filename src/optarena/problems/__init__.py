"""Test problems: the reference problems of the tutorials and classic test functions."""

from ._base import Problem, get, names, register_problem

__all__ = ["Problem", "get", "names", "register_problem"]
